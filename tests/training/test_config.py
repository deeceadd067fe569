"""TrainConfig checks of the data set fields."""

from __future__ import annotations

import pytest

from dropviz.training.config import TrainConfig, is_csv_dataset


@pytest.mark.parametrize("name", ["digits", "moons", "mnist", "fashion-mnist"])
def test_config_accepts_known_dataset(name: str) -> None:
    assert TrainConfig(dataset=name).dataset == name


def test_config_accepts_csv_dataset() -> None:
    assert TrainConfig(dataset="csv:0123456789ab").dataset == "csv:0123456789ab"
    assert is_csv_dataset("csv:0123456789ab")
    assert not is_csv_dataset("csv:0123456789AB")
    assert not is_csv_dataset("csv:0123")


@pytest.mark.parametrize("name", ["cifar10", "csv:", "csv:nothexdigits", "MNIST"])
def test_config_unknown_dataset_raises(name: str) -> None:
    with pytest.raises(ValueError, match="dataset must be one of"):
        TrainConfig(dataset=name)


def test_config_data_dir_on_non_idx_dataset_raises() -> None:
    with pytest.raises(ValueError, match="data_dir applies to mnist and fashion"):
        TrainConfig(dataset="digits", data_dir="/data")


def test_config_n_train_below_one_raises() -> None:
    with pytest.raises(ValueError, match="n_train must be at least 1"):
        TrainConfig(n_train=0)


def test_config_to_dict_has_data_fields() -> None:
    values = TrainConfig(dataset="mnist", data_dir="/data", n_train=500).to_dict()
    assert values["data_dir"] == "/data"
    assert values["n_train"] == 500
