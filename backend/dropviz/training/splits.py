"""Helpers of the data loaders: split checks, training subsets, standardization."""

from __future__ import annotations

import math

import numpy as np

from dropviz.training.errors import DatasetError


def standardize(
    x_train: np.ndarray, x_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scale both splits with the training split's per-column mean and deviation.

    Returns float32 `x_train` and `x_test`, and the float64 mean and scale.
    The deviation is the population one (ddof=0), as in scikit-learn's
    StandardScaler. A column that is constant on the training split gets the
    scale 1 and is centred on its value, so it becomes exactly 0 there
    instead of NaN.
    """
    x_train = np.asarray(x_train, dtype=np.float64)  # (n_train, n_features)
    x_test = np.asarray(x_test, dtype=np.float64)  # (n_test, n_features)
    mean = x_train.mean(axis=0)  # (n_features,)
    scale = x_train.std(axis=0)  # (n_features,)
    # Test exact constancy: the mean of equal values can differ from them by
    # rounding, which would leave a tiny nonzero deviation.
    constant = np.all(x_train == x_train[:1], axis=0)  # (n_features,)
    mean[constant] = x_train[0, constant]
    scale[constant] = 1.0
    return (
        ((x_train - mean) / scale).astype(np.float32),
        ((x_test - mean) / scale).astype(np.float32),
        mean,
        scale,
    )


def check_split_sizes(
    labels: np.ndarray, class_names: tuple[str, ...], test_fraction: float
) -> None:
    """Raise DatasetError where scikit-learn's stratified split would fail."""
    n_rows = len(labels)
    # train_test_split rounds the test size up and gives the rest to training.
    n_test = math.ceil(test_fraction * n_rows)
    n_train = n_rows - n_test
    counts = np.bincount(labels, minlength=len(class_names))  # (n_classes,)
    n_classes = int(np.count_nonzero(counts))
    if counts.min() < 2:
        name = class_names[int(np.argmin(counts))]
        raise DatasetError(
            f"Class {name!r} has {int(counts.min())} examples, but a stratified "
            "split needs at least two of every class. Add examples of it.",
            loc=("dataset",),
            kind="split_class_too_small",
            value=name,
        )
    for split, size, fix in (
        ("test", n_test, "raise test_fraction"),
        ("training", n_train, "lower test_fraction"),
    ):
        if size < n_classes:
            raise DatasetError(
                f"test_fraction = {test_fraction} leaves {size} of the {n_rows:,} "
                f"examples for {split}, fewer than the {n_classes} classes; a "
                f"stratified split needs one example of every class in each "
                f"split. Either {fix} or add examples.",
                loc=("test_fraction",),
                kind="split_too_small",
                value=test_fraction,
            )


def random_subset(n_rows: int, n_keep: int | None, seed: int) -> np.ndarray:
    """Return the sorted positions of a seeded random subset of `n_keep` rows.

    All rows when `n_keep` is None or at least `n_rows`.
    """
    if n_keep is None or n_keep >= n_rows:
        return np.arange(n_rows)
    # A stream of its own, so that the subset never shifts the split.
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    return np.sort(rng.choice(n_rows, size=n_keep, replace=False))
