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
