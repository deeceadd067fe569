"""IDX files and MNIST-style folders: reading, checks and loading as a data set."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from dropviz.training.config import TrainConfig
from dropviz.training.data import load_dataset
from dropviz.training.errors import DatasetError
from dropviz.training.idx import (
    IDX_CLASS_NAMES,
    IDX_FILE_NAMES,
    IdxFormatError,
    describe_idx_folder_problem,
    load_idx_folder,
    read_idx,
)
from tests.idx_files import idx_bytes, write_idx, write_mnist_folder

IMAGES = (np.arange(3 * 28 * 28) % 256).astype(np.uint8).reshape(3, 28, 28)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_images_raw_and_gzip(tmp_path: Path, compress: bool) -> None:
    path = write_idx(tmp_path / "images", idx_bytes(IMAGES), compress)
    values = read_idx(path)
    assert values.shape == (3, 28, 28)
    assert values.dtype == np.uint8
    assert np.array_equal(values, IMAGES)


def test_read_idx_labels(tmp_path: Path) -> None:
    labels = np.array([7, 0, 9, 3], dtype=np.uint8)
    values = read_idx(write_idx(tmp_path / "labels", idx_bytes(labels)))
    assert values.shape == (4,)
    assert values.tolist() == [7, 0, 9, 3]


@pytest.mark.parametrize("dtype", [">i2", ">i4", ">f4", ">f8", "i1"])
def test_read_idx_other_types_in_native_order(tmp_path: Path, dtype: str) -> None:
    expected = np.array([[-3, 0, 1], [2, 100, -100]], dtype=dtype)
    values = read_idx(write_idx(tmp_path / "values", idx_bytes(expected)))
    assert values.dtype.isnative
    assert values.dtype.kind == np.dtype(dtype).kind
    assert np.array_equal(values, expected)


def test_read_idx_gzip_found_by_content_not_name(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "no-extension", idx_bytes(IMAGES), compress=True)
    assert np.array_equal(read_idx(path), IMAGES)


TOO_LARGE_HEADER = b"\x00\x00\x08\x03" + b"\xff" * 8 + b"\x00\x00\x00\x10"


@pytest.mark.parametrize(
    "content, kind, words",
    [
        pytest.param(
            b"\x01\x00\x08\x01" + bytes(8), "idx_magic", "0x01000801", id="magic"
        ),
        pytest.param(b"PK\x03\x04" + bytes(8), "idx_magic", "two zero", id="zip"),
        pytest.param(
            b"\x00\x00\x07\x01\x00\x00\x00\x01\x00",
            "idx_type_code",
            "0x07",
            id="type-code",
        ),
        pytest.param(
            b"\x00\x00\x08\x00", "idx_dimensions", "0 dimensions", id="no-dims"
        ),
        pytest.param(b"\x00\x00", "idx_truncated", "4-byte", id="short-magic"),
        pytest.param(
            b"\x00\x00\x08\x03\x00\x00\x00\x03",
            "idx_truncated",
            "inside its header",
            id="short-header",
        ),
        pytest.param(
            idx_bytes(IMAGES)[:-1],
            "idx_truncated",
            "only 2,351 follow",
            id="short-values",
        ),
        pytest.param(
            idx_bytes(IMAGES) + b"\x00",
            "idx_trailing_data",
            "after the 2,352 bytes",
            id="trailing",
        ),
        pytest.param(TOO_LARGE_HEADER, "idx_too_large", "maximum", id="too-large"),
    ],
)
def test_read_idx_invalid_file_raises(
    tmp_path: Path, content: bytes, kind: str, words: str
) -> None:
    path = write_idx(tmp_path / "train-images-idx3-ubyte", content)
    with pytest.raises(IdxFormatError) as raised:
        read_idx(path)
    assert raised.value.kind == kind
    assert str(path) in str(raised.value)
    assert words in str(raised.value)
    assert raised.value.loc == ("data_dir",)


def test_read_idx_truncated_gzip_raises(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(IMAGES))[:-12])
    with pytest.raises(IdxFormatError) as raised:
        read_idx(path)
    assert raised.value.kind == "idx_gzip"
    assert "not a valid gzip file" in str(raised.value)


@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_folder_reads_four_files(tmp_path: Path, compress: bool) -> None:
    written = write_mnist_folder(tmp_path / "mnist", 40, 20, compress=compress)
    images = load_idx_folder("mnist", tmp_path)
    assert images.train_images.shape == (40, 28, 28)
    assert images.test_images.shape == (20, 28, 28)
    assert np.array_equal(images.train_images, written["train_images"])
    assert np.array_equal(images.test_labels, written["test_labels"])


def test_load_idx_folder_mismatched_counts_raises(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    written = write_mnist_folder(folder, 40, 20)
    labels = written["train_labels"][:39]
    write_idx(folder / IDX_FILE_NAMES["train_labels"], idx_bytes(labels))
    with pytest.raises(DatasetError) as raised:
        load_idx_folder("mnist", tmp_path)
    message = str(raised.value)
    assert raised.value.kind == "idx_count_mismatch"
    assert "40 images" in message
    assert "39 labels" in message
    assert IDX_FILE_NAMES["train_images"] in message
    assert IDX_FILE_NAMES["train_labels"] in message


@pytest.mark.parametrize(
    "role, values, kind, words",
    [
        pytest.param(
            "train_images",
            np.zeros((40, 28, 28), dtype=">f4"),
            "idx_type_code",
            "type code 0x08",
            id="float-images",
        ),
        pytest.param(
            "train_images",
            np.zeros((40, 8, 8), dtype=np.uint8),
            "idx_shape",
            "(40, 8, 8)",
            id="8x8-images",
        ),
        pytest.param(
            "train_labels",
            np.zeros((40, 2), dtype=np.uint8),
            "idx_shape",
            "(40, 2)",
            id="2-d-labels",
        ),
        pytest.param(
            "test_labels",
            np.full(20, 10, dtype=np.uint8),
            "idx_label_range",
            "the label 10",
            id="label-10",
        ),
    ],
)
def test_load_idx_folder_invalid_content_raises(
    tmp_path: Path, role: str, values: np.ndarray, kind: str, words: str
) -> None:
    folder = tmp_path / "mnist"
    write_mnist_folder(folder, 40, 20)
    path = write_idx(folder / IDX_FILE_NAMES[role], idx_bytes(values))
    with pytest.raises(IdxFormatError) as raised:
        load_idx_folder("mnist", tmp_path)
    assert raised.value.kind == kind
    assert str(path) in str(raised.value)
    assert words in str(raised.value)


def test_load_idx_folder_missing_file_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "fashion-mnist"
    write_mnist_folder(folder, 40, 20)
    (folder / IDX_FILE_NAMES["test_labels"]).unlink()
    with pytest.raises(DatasetError) as raised:
        load_idx_folder("fashion-mnist", tmp_path)
    message = str(raised.value)
    assert raised.value.kind == "idx_files_missing"
    assert raised.value.loc == ("data_dir",)
    assert "t10k-labels-idx1-ubyte is missing" in message
    assert str(folder) in message
    assert "DROPVIZ_DATA_DIR" in message


def test_describe_idx_folder_problem_cases(tmp_path: Path) -> None:
    no_folder = describe_idx_folder_problem("mnist", None)
    assert no_folder is not None
    assert "none is set" in no_folder
    assert "DROPVIZ_DATA_DIR" in no_folder

    missing = describe_idx_folder_problem("mnist", tmp_path)
    assert missing is not None
    assert f"{tmp_path / 'mnist'}, which does not exist" in missing

    write_mnist_folder(tmp_path / "mnist", 20, 10, compress=True)
    assert describe_idx_folder_problem("mnist", tmp_path) is None


def test_load_dataset_mnist_pixels_in_unit_range(tmp_path: Path) -> None:
    written = write_mnist_folder(tmp_path / "mnist", 60, 30)
    data = load_dataset(TrainConfig(dataset="mnist", data_dir=str(tmp_path)))
    assert data.x_train.shape == (60, 784)
    assert data.x_test.shape == (30, 784)
    assert data.x_train.dtype == np.float32
    assert data.y_train.dtype == np.int64
    assert data.input_shape == (28, 28)
    assert data.class_names == tuple("0123456789")
    assert data.feature_mean is None
    expected = written["train_images"].reshape(60, 784) / 255.0
    assert np.allclose(data.x_train, expected[data.train_index], atol=1e-7)
    assert np.array_equal(data.y_train, written["train_labels"][data.train_index])
    assert np.array_equal(data.y_test, written["test_labels"])
    assert data.x_train.min() >= 0.0
    assert data.x_train.max() == 1.0


def test_load_dataset_fashion_mnist_class_names(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path / "fashion-mnist", 20, 10)
    data = load_dataset(TrainConfig(dataset="fashion-mnist", data_dir=str(tmp_path)))
    assert data.class_names == IDX_CLASS_NAMES["fashion-mnist"]
    assert data.class_names[0] == "T-shirt/top"
    assert data.class_names[9] == "Ankle boot"


def test_load_dataset_n_train_subset_is_seeded(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path / "mnist", 100, 20)
    config = TrainConfig(dataset="mnist", data_dir=str(tmp_path), n_train=30)
    first = load_dataset(config)
    again = load_dataset(config)
    other_seed = load_dataset(TrainConfig(**{**config.to_dict(), "seed": 1}))
    assert first.x_train.shape == (30, 784)
    assert len(np.unique(first.train_index)) == 30
    assert np.array_equal(first.train_index, again.train_index)
    assert not np.array_equal(first.train_index, other_seed.train_index)
    assert first.x_test.shape == (20, 784)  # the test file is never subset


def test_load_dataset_mnist_without_folder_raises() -> None:
    with pytest.raises(DatasetError) as raised:
        load_dataset(TrainConfig(dataset="mnist"))
    assert raised.value.kind == "data_dir_missing"
