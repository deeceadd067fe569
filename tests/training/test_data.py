"""Data sets: shapes, ranges, seeded splits."""

from __future__ import annotations

import numpy as np
import pytest

from dropviz.training.config import DATASETS, TrainConfig
from dropviz.training.data import DATASET_INFO, load_dataset


def test_digits_shapes_and_range() -> None:
    data = load_dataset(TrainConfig())
    assert data.x_train.shape[1] == 64
    assert len(data.y_train) + len(data.y_test) == 1797
    assert data.x_train.dtype == np.float32
    assert data.x_train.min() >= 0.0
    assert data.x_train.max() <= 1.0
    assert data.input_shape == (8, 8)
    assert data.n_classes == 10


def test_digits_split_is_stratified() -> None:
    data = load_dataset(TrainConfig())
    train_share = np.bincount(data.y_train) / len(data.y_train)
    test_share = np.bincount(data.y_test) / len(data.y_test)
    assert np.max(np.abs(train_share - test_share)) < 0.01


def test_split_depends_on_seed_only() -> None:
    a = load_dataset(TrainConfig(seed=3))
    b = load_dataset(TrainConfig(seed=3))
    c = load_dataset(TrainConfig(seed=4))
    assert np.array_equal(a.y_test, b.y_test)
    assert np.array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)


@pytest.mark.parametrize("name", [d for d in DATASETS if d != "digits"])
def test_2d_sets_match_their_catalogue_entry(name: str) -> None:
    data = load_dataset(TrainConfig(dataset=name, n_samples=200))
    info = DATASET_INFO[name]
    assert data.n_features == info.n_features == 2
    assert len(data.y_train) + len(data.y_test) == 200
    assert set(np.unique(data.y_train)) == set(range(info.n_classes))
    assert np.all(np.isfinite(data.x_train))


@pytest.mark.parametrize("name", [d for d in DATASETS if d != "digits"])
def test_2d_sets_standardized_with_train_statistics(name: str) -> None:
    data = load_dataset(TrainConfig(dataset=name, n_samples=200))
    assert data.feature_mean is not None
    assert data.feature_scale is not None
    assert np.allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)
    assert np.allclose(data.x_train.std(axis=0), 1.0, atol=1e-5)
    assert not np.allclose(data.x_test.mean(axis=0), 0.0, atol=1e-5)


def test_digits_keeps_pixel_scale() -> None:
    data = load_dataset(TrainConfig())
    assert data.feature_mean is None
    assert data.x_train.max() == 1.0


def test_n_train_keeps_seeded_subset_of_training_split() -> None:
    full = load_dataset(TrainConfig())
    subset = load_dataset(TrainConfig(n_train=100))
    assert len(subset.y_train) == 100
    assert set(subset.train_index) <= set(full.train_index)
    assert np.array_equal(subset.test_index, full.test_index)


def test_split_indices_match_features() -> None:
    data = load_dataset(TrainConfig())
    assert len(data.train_index) == len(data.y_train)
    assert len(data.test_index) == len(data.y_test)
    assert not set(data.train_index) & set(data.test_index)
