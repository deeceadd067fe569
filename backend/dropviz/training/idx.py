"""IDX files, the format of MNIST and Fashion-MNIST, and the folder of each set.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 size per dimension, then the values in
C order, big-endian. A file may be gzip-compressed whatever its name: the
reader recognizes gzip by its first two bytes, 1f 8b, which no IDX file has.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path

import numpy as np

from dropviz.training.errors import DatasetError

# IDX type codes and their big-endian numpy dtypes, from the format's table as
# accord-framework.net reproduces it (Accord.IO IdxReader.Magic).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
UNSIGNED_BYTE = 0x08

# The largest MNIST file, train-images-idx3-ubyte, has 47,040,000 bytes of
# pixels. This bound only stops a corrupt header from requesting gigabytes.
MAX_IDX_BYTES = 1 << 30

GZIP_MAGIC = b"\x1f\x8b"

IDX_FILE_NAMES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

IMAGE_SHAPE = (28, 28)  # (height, width) of every MNIST and Fashion-MNIST image

# Class names in label order. Fashion-MNIST's come from the Labels table of its
# README (github.com/zalandoresearch/fashion-mnist).
IDX_CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}


class IdxFormatError(DatasetError):
    """An IDX file that is corrupt, truncated or of the wrong type.

    `loc` is ("data_dir",) because IDX files reach dropviz only through the
    data folder that DROPVIZ_DATA_DIR or a run's `data_dir` names.
    """

    def __init__(self, path: Path, problem: str, kind: str) -> None:
        super().__init__(
            f"IDX file {path} {problem}",
            loc=("data_dir",),
            kind=kind,
            value=str(path),
        )


@dataclass(frozen=True)
class IdxImageSet:
    """The four arrays of an MNIST-style folder, as stored in its files."""

    train_images: np.ndarray  # (n_train, 28, 28) uint8
    train_labels: np.ndarray  # (n_train,) uint8
    test_images: np.ndarray  # (n_test, 28, 28) uint8
    test_labels: np.ndarray  # (n_test,) uint8


def read_idx(path: Path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read one IDX file, raw or gzip-compressed, into an array in native byte order.

    Raises IdxFormatError naming the file when the magic number, type code or
    sizes are invalid, when the values are fewer or more than the header's
    shape needs, when the data would exceed `max_bytes`, or when the gzip
    stream is corrupt.
    """
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            if compressed:
                with gzip.GzipFile(fileobj=raw) as stream:
                    return _read_idx_stream(stream, path, max_bytes)
            return _read_idx_stream(raw, path, max_bytes)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise IdxFormatError(
            path,
            f"is not a valid gzip file ({exc}). Replace it with an intact copy, "
            "compressed or not.",
            "idx_gzip",
        ) from exc
    except OSError as exc:
        raise IdxFormatError(
            path,
            f"cannot be read: {exc.strerror or exc}. Check that the server "
            "process may read it.",
            "idx_unreadable",
        ) from exc


def _read_idx_stream(stream: BufferedIOBase, path: Path, max_bytes: int) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4:
        raise IdxFormatError(
            path,
            f"is truncated: it has {len(magic)} bytes, fewer than the 4-byte "
            "magic number. Replace it with an intact copy.",
            "idx_truncated",
        )
    if magic[:2] != b"\x00\x00":
        raise IdxFormatError(
            path,
            f"has the magic number 0x{magic.hex()}, but an IDX magic number "
            "starts with two zero bytes (0x0000, then a type code and a "
            "dimension count). The file is not an IDX file: replace it with "
            "the original file of the data set.",
            "idx_magic",
        )
    type_code, n_dims = magic[2], magic[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02x}" for code in IDX_DTYPES)
        raise IdxFormatError(
            path,
            f"has the type code 0x{type_code:02x}, which is not an IDX type code "
            f"({known}). The file is corrupt or not an IDX file.",
            "idx_type_code",
        )
    if n_dims == 0:
        raise IdxFormatError(
            path,
            "declares 0 dimensions; an IDX file has at least one. The file is corrupt.",
            "idx_dimensions",
        )

    size_bytes = stream.read(4 * n_dims)
    if len(size_bytes) < 4 * n_dims:
        raise IdxFormatError(
            path,
            f"is truncated inside its header: {n_dims} dimension sizes need "
            f"{4 * n_dims} bytes and {len(size_bytes)} remain. Replace it with "
            "an intact copy.",
            "idx_truncated",
        )
    shape = struct.unpack(f">{n_dims}I", size_bytes)
    dtype = IDX_DTYPES[type_code]
    n_bytes = math.prod(shape) * dtype.itemsize
    if n_bytes > max_bytes:
        raise IdxFormatError(
            path,
            f"declares the shape {shape}, {n_bytes:,} bytes of values, more than "
            f"the maximum of {max_bytes:,} bytes. The header is corrupt.",
            "idx_too_large",
        )

    # One byte more than needed reveals trailing data without reading it all.
    payload = stream.read(n_bytes + 1)
    if len(payload) < n_bytes:
        raise IdxFormatError(
            path,
            f"is truncated: its header declares the shape {shape}, which needs "
            f"{n_bytes:,} bytes of values, but only {len(payload):,} follow. "
            "Replace it with an intact copy.",
            "idx_truncated",
        )
    if len(payload) > n_bytes:
        raise IdxFormatError(
            path,
            f"has data after the {n_bytes:,} bytes of values that its shape "
            f"{shape} declares. The file is corrupt or was joined with another.",
            "idx_trailing_data",
        )
    values = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def find_idx_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Look for the four MNIST-style files in `folder`, each raw or with `.gz`.

    Returns the paths found by role ("train_images", ...) and the file names
    of the roles that have no file. A raw file wins over its `.gz` twin.
    """
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, name in IDX_FILE_NAMES.items():
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(name)
    return found, missing


def describe_idx_folder_problem(name: str, data_dir: Path | None) -> str | None:
    """Return why the data set `name` cannot load from `data_dir`, or None if it can.

    Only checks that the files exist; `load_idx_folder` checks their content.
    """
    expected = ", ".join(IDX_FILE_NAMES.values())
    compression = "Each file may be raw, or gzip-compressed with the extension .gz."
    elsewhere = (
        f"Or set DROPVIZ_DATA_DIR, or the run's data_dir, to another folder that "
        f"contains {name}/. Nothing is downloaded."
    )
    if data_dir is None:
        return (
            f"{name} reads IDX files from a local folder, but none is set. Set "
            f"DROPVIZ_DATA_DIR, or the run's data_dir, to a folder whose subfolder "
            f"{name}/ contains the files {expected}. {compression} Nothing is "
            "downloaded."
        )
    folder = data_dir / name
    if not folder.is_dir():
        return (
            f"{name} needs the folder {folder}, which does not exist. Create it "
            f"with the files {expected}. {compression} {elsewhere}"
        )
    _, missing = find_idx_files(folder)
    if missing:
        verb, pronoun = ("is", "it") if len(missing) == 1 else ("are", "them")
        return (
            f"{name} needs the files {expected} in {folder}, and "
            f"{', '.join(missing)} {verb} missing. Copy {pronoun} there. "
            f"{compression} {elsewhere}"
        )
    return None


def load_idx_folder(name: str, data_dir: Path | None) -> IdxImageSet:
    """Read and check the four IDX files of `name` ("mnist" or "fashion-mnist").

    The files are in `data_dir / name`. Images must be unsigned bytes of shape
    (n, 28, 28) and labels unsigned bytes of shape (n,) with values 0 to 9, and
    each pair of files must contain the same number n of examples.
    """
    problem = describe_idx_folder_problem(name, data_dir)
    if problem is not None:
        kind = "data_dir_missing" if data_dir is None else "idx_files_missing"
        raise DatasetError(
            problem,
            loc=("data_dir",),
            kind=kind,
            value=None if data_dir is None else str(data_dir),
        )
    assert data_dir is not None  # describe_idx_folder_problem returned None
    paths, _ = find_idx_files(data_dir / name)
    n_classes = len(IDX_CLASS_NAMES[name])
    arrays: dict[str, np.ndarray] = {}
    for role, path in paths.items():
        values = read_idx(path)
        if role.endswith("images"):
            _check_images(values, path)
        else:
            _check_labels(values, path, n_classes)
        arrays[role] = values
    for split in ("train", "test"):
        _check_counts(
            paths[f"{split}_images"],
            arrays[f"{split}_images"],
            paths[f"{split}_labels"],
            arrays[f"{split}_labels"],
        )
    return IdxImageSet(**arrays)


def _check_images(images: np.ndarray, path: Path) -> None:
    _check_unsigned_bytes(images, path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise IdxFormatError(
            path,
            f"has the shape {images.shape}, but images must have the shape "
            f"(n, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}). Check that it is the "
            "images file of the data set.",
            "idx_shape",
        )


def _check_labels(labels: np.ndarray, path: Path, n_classes: int) -> None:
    _check_unsigned_bytes(labels, path)
    if labels.ndim != 1:
        raise IdxFormatError(
            path,
            f"has the shape {labels.shape}, but labels must have the shape (n,). "
            "Check that it is the labels file of the data set.",
            "idx_shape",
        )
    if labels.size and int(labels.max()) >= n_classes:
        raise IdxFormatError(
            path,
            f"contains the label {int(labels.max())}, but labels must be 0 to "
            f"{n_classes - 1}. Check that it is the labels file of the data set.",
            "idx_label_range",
        )


def _check_unsigned_bytes(values: np.ndarray, path: Path) -> None:
    if values.dtype != np.uint8:
        raise IdxFormatError(
            path,
            f"stores {values.dtype} values, but MNIST-style files store unsigned "
            f"bytes (type code 0x{UNSIGNED_BYTE:02x}). Replace it with the "
            "original file of the data set.",
            "idx_type_code",
        )


def _check_counts(
    images_path: Path, images: np.ndarray, labels_path: Path, labels: np.ndarray
) -> None:
    if len(images) != len(labels):
        raise DatasetError(
            f"IDX files {images_path} and {labels_path} do not match: the images "
            f"file has {len(images):,} images and the labels file has "
            f"{len(labels):,} labels. Use the two files from the same copy of "
            "the data set.",
            loc=("data_dir",),
            kind="idx_count_mismatch",
            value=str(images_path.parent),
        )
