"""Standardization with training statistics, split checks and training subsets."""

from __future__ import annotations

import numpy as np
import pytest

from dropviz.training.config import TrainConfig
from dropviz.training.csv_table import parse_csv
from dropviz.training.data import load_dataset
from dropviz.training.errors import DatasetError
from dropviz.training.splits import check_split_sizes, random_subset, standardize


def test_standardize_uses_training_statistics_only() -> None:
    rng = np.random.default_rng(0)
    x_train = rng.normal(5.0, 3.0, size=(50, 4))
    x_test = rng.normal(-20.0, 0.1, size=(10, 4))  # very different on purpose
    train_scaled, test_scaled, mean, scale = standardize(x_train, x_test)

    assert np.allclose(mean, x_train.mean(axis=0))
    assert np.allclose(scale, x_train.std(axis=0))
    assert np.allclose(train_scaled.mean(axis=0), 0.0, atol=1e-6)
    assert np.allclose(train_scaled.std(axis=0), 1.0, atol=1e-6)
    expected_test = (x_test - x_train.mean(axis=0)) / x_train.std(axis=0)
    assert np.allclose(test_scaled, expected_test, rtol=1e-5)
    assert train_scaled.dtype == np.float32


def test_standardize_constant_column_gives_zero_not_nan() -> None:
    x_train = np.array([[0.1, 1.0], [0.1, 2.0], [0.1, 3.0]])
    x_test = np.array([[0.6, 2.0]])
    train_scaled, test_scaled, mean, scale = standardize(x_train, x_test)
    assert np.all(np.isfinite(train_scaled))
    assert np.all(train_scaled[:, 0] == 0.0)
    assert scale[0] == 1.0
    assert mean[0] == 0.1
    assert test_scaled[0, 0] == pytest.approx(0.5)


def test_check_split_sizes_too_few_test_rows_raises() -> None:
    labels = np.repeat(np.arange(5), 2)  # 10 rows, 5 classes
    with pytest.raises(DatasetError) as raised:
        check_split_sizes(labels, tuple("abcde"), 0.25)
    assert raised.value.loc == ("test_fraction",)
    assert "leaves 3 of the 10 examples for test" in str(raised.value)
    assert "raise test_fraction" in str(raised.value)


def test_check_split_sizes_too_few_training_rows_raises() -> None:
    labels = np.repeat(np.arange(5), 2)
    with pytest.raises(DatasetError) as raised:
        check_split_sizes(labels, tuple("abcde"), 0.9)
    assert "for training" in str(raised.value)
    assert "lower test_fraction" in str(raised.value)


def test_check_split_sizes_enough_rows_passes() -> None:
    check_split_sizes(np.repeat(np.arange(3), 4), ("a", "b", "c"), 0.25)


def test_random_subset_is_sorted_and_bounded() -> None:
    subset = random_subset(100, 10, seed=3)
    assert len(subset) == 10
    assert np.all(np.diff(subset) > 0)
    assert np.array_equal(subset, random_subset(100, 10, seed=3))
    assert np.array_equal(random_subset(5, None, seed=3), np.arange(5))
    assert np.array_equal(random_subset(5, 50, seed=3), np.arange(5))


def _csv_table() -> bytes:
    rng = np.random.default_rng(1)
    lines = ["width,height,constant,label"]
    for row in range(40):
        width, height = rng.normal(100.0, 15.0), rng.normal(-3.0, 0.5)
        lines.append(f"{width},{height},7,{'big' if row % 2 else 'small'}")
    return ("\n".join(lines) + "\n").encode()


def test_load_dataset_csv_standardized_on_train_split() -> None:
    table = parse_csv(_csv_table())
    config = TrainConfig(dataset="csv:0123456789ab", test_fraction=0.25, seed=2)
    data = load_dataset(config, table)

    source_train = table.features[data.train_index]
    source_test = table.features[data.test_index]
    mean = source_train.mean(axis=0)
    scale = np.where(source_train.std(axis=0) > 0, source_train.std(axis=0), 1.0)
    assert len(data.train_index) == 30
    assert len(data.test_index) == 10
    assert not set(data.train_index) & set(data.test_index)
    assert np.allclose(data.x_train, (source_train - mean) / scale, atol=1e-5)
    assert np.allclose(data.x_test, (source_test - mean) / scale, atol=1e-5)
    assert np.all(data.x_train[:, 2] == 0.0)  # the constant column
    assert np.array_equal(data.y_train, table.labels[data.train_index])
    assert data.feature_names == ("width", "height", "constant")
    assert data.class_names == ("big", "small")


def test_load_dataset_csv_without_table_raises() -> None:
    with pytest.raises(ValueError, match="uploaded CSV"):
        load_dataset(TrainConfig(dataset="csv:0123456789ab"))
