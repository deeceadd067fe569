"""Writers of small IDX files and MNIST-style folders for the tests."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from dropviz.training.idx import IDX_FILE_NAMES

TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}


def idx_bytes(values: np.ndarray) -> bytes:
    """Encode `values` as an IDX file: magic number, big-endian sizes, values."""
    big_endian = values.astype(values.dtype.newbyteorder(">"))
    type_code = TYPE_CODES[big_endian.dtype]
    header = bytes([0, 0, type_code, values.ndim])
    header += struct.pack(f">{values.ndim}I", *values.shape)
    return header + big_endian.tobytes()


def write_idx(path: Path, content: bytes, compress: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def make_images(
    n_images: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:  # (n, 28, 28) uint8, (n,) uint8
    """Draw easy-to-learn 28x28 images: class k is a bright 8x4 bar at place k."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n_images) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n_images, 28, 28), dtype=np.uint8)
    for image, label in zip(images, labels, strict=True):
        row, col = 3 + 12 * (label // 5), 1 + 5 * (label % 5)
        image[row : row + 8, col : col + 4] = 255
    return images, labels


def write_mnist_folder(
    folder: Path,
    n_train: int = 200,
    n_test: int = 50,
    compress: bool = False,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write the four IDX files of a small MNIST-style set; return their arrays."""
    train_images, train_labels = make_images(n_train, seed)
    test_images, test_labels = make_images(n_test, seed + 1)
    arrays = {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }
    suffix = ".gz" if compress else ""
    for role, values in arrays.items():
        write_idx(folder / (IDX_FILE_NAMES[role] + suffix), idx_bytes(values), compress)
    return arrays
