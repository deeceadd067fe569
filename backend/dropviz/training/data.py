"""Data sets: scikit-learn's digits, seeded 2-D toy sets, IDX folders, CSV tables.

Every loader is deterministic given the config: the same seed gives the same
samples, the same stratified train/test split and the same `n_train` subset.
Image pixels stay scaled to [0, 1], because the page draws them as images.
2-D and CSV features are standardized with the mean and standard deviation
of the training split alone, so nothing of the test split leaks into training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from sklearn.datasets import load_digits, make_circles, make_moons
from sklearn.model_selection import train_test_split

from dropviz.training.config import IDX_DATASETS, TrainConfig, is_csv_dataset
from dropviz.training.csv_table import LabeledTable
from dropviz.training.idx import IDX_CLASS_NAMES, IMAGE_SHAPE, load_idx_folder
from dropviz.training.splits import check_split_sizes, random_subset, standardize


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
    # Rows of the source (generated samples, CSV rows, or the examples of the
    # IDX train and test files) that x_train and x_test hold, in that order.
    train_index: np.ndarray  # (n_train,) int64
    test_index: np.ndarray  # (n_test,) int64
    # Standardization, when applied: x = (source - feature_mean) / feature_scale.
    feature_mean: np.ndarray | None = None  # (n_features,) float64
    feature_scale: np.ndarray | None = None  # (n_features,) float64
    feature_names: tuple[str, ...] | None = None

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


# "bundled" ships with scikit-learn, "generated" is drawn from n_samples and
# noise, "idx" is read from a data folder, "csv" was uploaded.
DatasetKind = Literal["bundled", "generated", "idx", "csv"]


@dataclass(frozen=True)
class DatasetInfo:
    """Catalogue entry of a data set, available before any run loads it."""

    name: str
    description: str
    n_features: int
    n_classes: int
    input_shape: tuple[int, int] | None
    kind: DatasetKind


def _idx_info(name: str, images: str) -> DatasetInfo:
    return DatasetInfo(
        name,
        f"{images} from local IDX files, 28x28 pixels scaled to [0, 1]; the full "
        "set has 60,000 training and 10,000 test images",
        IMAGE_SHAPE[0] * IMAGE_SHAPE[1],
        len(IDX_CLASS_NAMES[name]),
        IMAGE_SHAPE,
        "idx",
    )


DATASET_INFO: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits",
        "scikit-learn's 1,797 handwritten digits, 8x8 pixels scaled to [0, 1]",
        64,
        10,
        (8, 8),
        "bundled",
    ),
    "moons": DatasetInfo(
        "moons", "two interleaving half circles", 2, 2, None, "generated"
    ),
    "circles": DatasetInfo(
        "circles", "a small circle inside a large one", 2, 2, None, "generated"
    ),
    "xor": DatasetInfo(
        "xor",
        "uniform points in [-1, 1]², labelled by the sign of x·y",
        2,
        2,
        None,
        "generated",
    ),
    "spiral": DatasetInfo(
        "spiral", "two interleaved spiral arms", 2, 2, None, "generated"
    ),
    "gaussians": DatasetInfo(
        "gaussians", "three Gaussian blobs", 2, 3, None, "generated"
    ),
    "mnist": _idx_info("mnist", "MNIST handwritten digits"),
    "fashion-mnist": _idx_info("fashion-mnist", "Fashion-MNIST clothing images"),
}


def load_dataset(config: TrainConfig, table: LabeledTable | None = None) -> Dataset:
    """Load and split the data set that `config.dataset` names.

    An uploaded CSV data set ("csv:<id>") needs its parsed `table`. Raises
    DatasetError when files are missing or invalid, or when the split would
    leave a class without examples.
    """
    if config.dataset in IDX_DATASETS:
        return _load_idx(config)
    if is_csv_dataset(config.dataset):
        if table is None:
            raise ValueError(
                f"dataset {config.dataset!r} is an uploaded CSV; pass its parsed "
                "table to load_dataset"
            )
        return _split(
            config,
            table.features,
            table.labels,
            table.class_names,
            standardized=True,
            feature_names=table.feature_names,
        )

    seed = _split_seed(config.seed)
    if config.dataset == "digits":
        bunch = load_digits()
        return _split(
            config,
            bunch.data / 16.0,  # pixel values 0..16
            bunch.target.astype(np.int64),
            tuple(str(name) for name in bunch.target_names),
            input_shape=(8, 8),
        )
    features, labels = _make_2d(config.dataset, config.n_samples, config.noise, seed)
    class_names = tuple(str(k) for k in range(DATASET_INFO[config.dataset].n_classes))
    return _split(config, features, labels, class_names, standardized=True)


def _split(
    config: TrainConfig,
    features: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...],
    *,
    input_shape: tuple[int, int] | None = None,
    standardized: bool = False,
    feature_names: tuple[str, ...] | None = None,
) -> Dataset:
    """Split stratified by class, keep the `n_train` subset, then scale."""
    seed = _split_seed(config.seed)
    check_split_sizes(labels, class_names, config.test_fraction)
    train_index, test_index = train_test_split(
        np.arange(len(labels)),
        test_size=config.test_fraction,
        random_state=seed,
        stratify=labels,
    )
    train_index = train_index[random_subset(len(train_index), config.n_train, seed)]

    mean = scale = None
    if standardized:
        x_train, x_test, mean, scale = standardize(
            features[train_index], features[test_index]
        )
    else:
        x_train, x_test = features[train_index], features[test_index]
    return Dataset(
        name=config.dataset,
        x_train=np.ascontiguousarray(x_train, dtype=np.float32),
        y_train=np.ascontiguousarray(labels[train_index], dtype=np.int64),
        x_test=np.ascontiguousarray(x_test, dtype=np.float32),
        y_test=np.ascontiguousarray(labels[test_index], dtype=np.int64),
        class_names=class_names,
        input_shape=input_shape,
        train_index=train_index.astype(np.int64),
        test_index=test_index.astype(np.int64),
        feature_mean=mean,
        feature_scale=scale,
        feature_names=feature_names,
    )


def _load_idx(config: TrainConfig) -> Dataset:
    data_dir = Path(config.data_dir) if config.data_dir is not None else None
    images = load_idx_folder(config.dataset, data_dir)
    n_features = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    train_index = random_subset(
        len(images.train_labels), config.n_train, _split_seed(config.seed)
    )
    test_index = np.arange(len(images.test_labels))
    # NOTE: every run keeps its own float32 copy of the images, 188 MB for all
    # 60,000 MNIST training images. n_train bounds it.
    x_train = images.train_images[train_index].reshape(-1, n_features)
    x_train = x_train.astype(np.float32) / np.float32(255.0)  # (n_train, 784)
    x_test = images.test_images.reshape(-1, n_features)
    x_test = x_test.astype(np.float32) / np.float32(255.0)  # (n_test, 784)
    return Dataset(
        name=config.dataset,
        x_train=x_train,
        y_train=images.train_labels[train_index].astype(np.int64),
        x_test=x_test,
        y_test=images.test_labels.astype(np.int64),
        class_names=IDX_CLASS_NAMES[config.dataset],
        input_shape=IMAGE_SHAPE,
        train_index=train_index.astype(np.int64),
        test_index=test_index.astype(np.int64),
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
