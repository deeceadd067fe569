"""A run's data set as `.npz` bytes, and the data set of a stored run.

Built-in and IDX data sets are rebuilt from the run's config, since loading
is deterministic. An uploaded CSV lives only in the server's memory, so its
run keeps the loaded splits in `dataset.npz` beside its step file.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from dropviz.training.config import TrainConfig, is_csv_dataset
from dropviz.training.data import Dataset, load_dataset
from dropviz.training.errors import DatasetError


def dataset_to_npz(dataset: Dataset) -> bytes:
    """Return the data set's train and test splits as `.npz` bytes."""
    arrays: dict[str, np.ndarray] = {
        "x_train": dataset.x_train,
        "y_train": dataset.y_train,
        "x_test": dataset.x_test,
        "y_test": dataset.y_test,
        "train_index": dataset.train_index,
        "test_index": dataset.test_index,
        "class_names": np.array(dataset.class_names, dtype=np.str_),
    }
    if dataset.feature_mean is not None and dataset.feature_scale is not None:
        arrays["feature_mean"] = dataset.feature_mean
        arrays["feature_scale"] = dataset.feature_scale
    if dataset.feature_names is not None:
        arrays["feature_names"] = np.array(dataset.feature_names, dtype=np.str_)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def dataset_from_npz(name: str, payload: bytes) -> Dataset:
    """Rebuild a data set written by `dataset_to_npz`; raise ValueError if invalid."""
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            names = archive.files
            optional = {
                key: archive[key]
                for key in ("feature_mean", "feature_scale", "feature_names")
                if key in names
            }
            x_train = np.ascontiguousarray(archive["x_train"], dtype=np.float32)
            x_test = np.ascontiguousarray(archive["x_test"], dtype=np.float32)
            y_train = archive["y_train"].astype(np.int64)
            y_test = archive["y_test"].astype(np.int64)
            class_names = tuple(str(c) for c in archive["class_names"])
            train_index = archive["train_index"].astype(np.int64)
            test_index = archive["test_index"].astype(np.int64)
    except (KeyError, OSError, ValueError) as exc:
        raise ValueError(f"the data set file is not a valid .npz: {exc}") from None

    if x_train.ndim != 2 or x_test.ndim != 2 or x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"x_train {x_train.shape} and x_test {x_test.shape} must be 2-D with "
            "equal feature counts"
        )
    for labels, features, split in (
        (y_train, x_train, "train"),
        (y_test, x_test, "test"),
    ):
        if labels.shape != (len(features),):
            raise ValueError(
                f"y_{split} has shape {labels.shape}, not ({len(features)},)"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise ValueError(f"y_{split} has labels outside 0..{len(class_names) - 1}")
    feature_names = optional.get("feature_names")
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=class_names,
        input_shape=None,
        train_index=train_index,
        test_index=test_index,
        feature_mean=optional.get("feature_mean"),
        feature_scale=optional.get("feature_scale"),
        feature_names=tuple(str(f) for f in feature_names)
        if feature_names is not None
        else None,
    )


def load_stored_dataset(config: TrainConfig, dataset_file: Path) -> Dataset:
    """Load the data set of a stored or imported run.

    Raises DatasetError when a file is missing or invalid.
    """
    if not is_csv_dataset(config.dataset):
        return load_dataset(config)
    try:
        return dataset_from_npz(config.dataset, dataset_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"the run's copy of uploaded data set {config.dataset!r} at "
            f"{dataset_file} cannot be read: {exc}",
            loc=("dataset",),
            kind="dataset_file",
            value=config.dataset,
        ) from None
