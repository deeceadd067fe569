"""Data sets: scikit-learn's bundled digits and seeded 2-D toy sets.

Every loader is deterministic given the config: the same seed gives the same
samples and the same stratified train/test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits, make_circles, make_moons
from sklearn.model_selection import train_test_split

from dropviz.training.config import TrainConfig


@dataclass(frozen=True)
class Dataset:
    """A classification data set split into float32 features and int64 labels."""

    name: str
    x_train: np.ndarray  # (n_train, n_features) float32
    y_train: np.ndarray  # (n_train,) int64
    x_test: np.ndarray  # (n_test, n_features) float32
    y_test: np.ndarray  # (n_test,) int64
    class_names: tuple[str, ...]
    input_shape: tuple[int, int] | None  # (height, width) for images

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class DatasetInfo:
    """Catalogue entry of a data set, available before any run loads it."""

    name: str
    description: str
    n_features: int
    n_classes: int
    input_shape: tuple[int, int] | None


DATASET_INFO: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits",
        "scikit-learn's 1,797 handwritten digits, 8x8 pixels scaled to [0, 1]",
        64,
        10,
        (8, 8),
    ),
    "moons": DatasetInfo("moons", "two interleaving half circles", 2, 2, None),
    "circles": DatasetInfo("circles", "a small circle inside a large one", 2, 2, None),
    "xor": DatasetInfo(
        "xor", "uniform points in [-1, 1]², labelled by the sign of x·y", 2, 2, None
    ),
    "spiral": DatasetInfo("spiral", "two interleaved spiral arms", 2, 2, None),
    "gaussians": DatasetInfo("gaussians", "three Gaussian blobs", 2, 3, None),
}


def load_dataset(config: TrainConfig) -> Dataset:
    """Load and split the data set that `config.dataset` names."""
    seed = _split_seed(config.seed)
    if config.dataset == "digits":
        bunch = load_digits()
        features = (bunch.data / 16.0).astype(np.float32)  # pixel values 0..16
        labels = bunch.target.astype(np.int64)
        class_names = tuple(str(name) for name in bunch.target_names)
        input_shape: tuple[int, int] | None = (8, 8)
    else:
        features, labels = _make_2d(
            config.dataset, config.n_samples, config.noise, seed
        )
        class_names = tuple(
            str(k) for k in range(DATASET_INFO[config.dataset].n_classes)
        )
        input_shape = None

    x_train, x_test, y_train, y_test = train_test_split(
        features,
        labels,
        test_size=config.test_fraction,
        random_state=seed,
        stratify=labels,
    )
    return Dataset(
        name=config.dataset,
        x_train=np.ascontiguousarray(x_train, dtype=np.float32),
        y_train=np.ascontiguousarray(y_train, dtype=np.int64),
        x_test=np.ascontiguousarray(x_test, dtype=np.float32),
        y_test=np.ascontiguousarray(y_test, dtype=np.int64),
        class_names=class_names,
        input_shape=input_shape,
    )


def _split_seed(seed: int) -> int:
    # scikit-learn takes a 32-bit seed; derive it so that data and masks draw
    # from unrelated streams even though both come from the run's one seed.
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def _make_2d(
    name: str, n_samples: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if name == "moons":
        return make_moons(n_samples=n_samples, noise=noise, random_state=seed)  # type: ignore[no-any-return]
    if name == "circles":
        return make_circles(  # type: ignore[no-any-return]
            n_samples=n_samples, noise=noise, factor=0.5, random_state=seed
        )
    if name == "xor":
        points = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
        labels = (points[:, 0] * points[:, 1] > 0).astype(np.int64)
        return points + rng.normal(0.0, noise, size=points.shape), labels
    if name == "spiral":
        labels = np.arange(n_samples) % 2
        radius = rng.uniform(0.05, 1.0, size=n_samples)
        angle = 1.75 * 2 * np.pi * radius + np.pi * labels
        points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        return points + rng.normal(0.0, noise * 0.25, size=points.shape), labels
    if name == "gaussians":
        labels = np.arange(n_samples) % 3
        centers = np.array([[-1.0, -0.6], [1.0, -0.6], [0.0, 1.0]])
        points = centers[labels] + rng.normal(0.0, 0.35 + noise, size=(n_samples, 2))
        return points, labels
    raise ValueError(f"unknown 2-D data set {name!r}")
