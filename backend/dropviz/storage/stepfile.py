"""The append-only step file of a run: every step's masks, loss and accuracy.

Layout, all little-endian:

- header: magic `DVZS`, u16 version, u16 mask_scope (the stream's codes: 0
  per-step, 1 per-example, 2 DropConnect weights), u32 header_bytes, u32
  record_bytes, u32 max_mask_rows, u32 layer_count L, then L + 1 u32 unit
  counts, zero-padded to a multiple of 8 bytes;
- then one record of `record_bytes` per step, in step order, so step s
  starts at `header_bytes + s * record_bytes`: the stream's 16-byte step
  entry (u32 epoch, u32 mask_rows, f32 loss, f32 batch_accuracy), then each
  layer's mask block in the stream's bit layout (docs/protocol.md), with
  `max_mask_rows` rows so every record has the same size. Rows past
  `mask_rows` are zero.

A crash can leave a partial last record; `StepFile.open` cuts it off.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dropviz.streaming.frames import MASK_SCOPE_CODES, StepEntry, pack_masks
from dropviz.training.records import StepRecord

MAGIC = b"DVZS"
VERSION = 1
_HEADER = struct.Struct("<4sHHIIII")  # magic .. layer_count
_ENTRY = struct.Struct("<IIff")  # epoch, mask_rows, loss, batch_accuracy


class StepFileError(ValueError):
    """A step file whose header or size does not follow the layout."""


@dataclass(frozen=True)
class StepLayout:
    """The fixed record layout of one run's step file."""

    layer_sizes: tuple[int, ...]
    mask_scope: str  # "per-step", "per-example" or "weights" (DropConnect)
    max_mask_rows: int  # 1, the batch size, or 0 for DropConnect

    @property
    def block_shapes(self) -> list[tuple[int, int]]:
        """Return (rows, units) of each layer's mask block as stored."""
        sizes = self.layer_sizes
        if self.mask_scope == "weights":
            return [(sizes[layer], sizes[layer + 1]) for layer in range(len(sizes) - 1)]
        return [(self.max_mask_rows, n_units) for n_units in sizes[:-1]]

    @property
    def record_bytes(self) -> int:
        size = _ENTRY.size
        for rows, units in self.block_shapes:
            block = rows * -(-units // 8)
            size += block + (-block % 4)
        return size

    def header(self) -> bytes:
        fixed_size = _HEADER.size + 4 * len(self.layer_sizes)
        header_bytes = fixed_size + (-fixed_size % 8)
        header = _HEADER.pack(
            MAGIC,
            VERSION,
            MASK_SCOPE_CODES[self.mask_scope],
            header_bytes,
            self.record_bytes,
            self.max_mask_rows,
            len(self.layer_sizes) - 1,
        )
        header += struct.pack(f"<{len(self.layer_sizes)}I", *self.layer_sizes)
        return header + bytes(header_bytes - len(header))

    def encode(self, record: StepRecord) -> bytes:
        """Encode one step as a record of exactly `record_bytes`."""
        if record.weight_masks is not None:
            masks = list(record.weight_masks)
            mask_rows = 0
        else:
            mask_rows = record.batch_rows
            masks = [_pad_rows(mask, self.max_mask_rows) for mask in record.masks]
        entry = StepEntry(
            epoch=record.epoch,
            mask_rows=mask_rows,
            loss=record.loss,
            batch_accuracy=record.batch_accuracy,
            packed_masks=pack_masks(masks),
        )
        return (
            _ENTRY.pack(entry.epoch, entry.mask_rows, entry.loss, entry.batch_accuracy)
            + entry.packed_masks
        )

    def decode(self, record: bytes) -> StoredStep:
        """Decode one record; masks keep only the step's `mask_rows` rows."""
        epoch, mask_rows, loss, accuracy = _ENTRY.unpack_from(record)
        masks = []
        offset = _ENTRY.size
        for rows, units in self.block_shapes:
            row_bytes = -(-units // 8)
            size = rows * row_bytes
            packed = np.frombuffer(record, np.uint8, size, offset).reshape(
                rows, row_bytes
            )
            bits = np.unpackbits(packed, axis=1, count=units, bitorder="little")
            kept = bits.astype(bool)  # (rows, units)
            if self.mask_scope != "weights":
                kept = kept[:mask_rows]
            masks.append(kept)
            offset += size + (-size % 4)
        return StoredStep(epoch, mask_rows, loss, accuracy, masks, record)


@dataclass(frozen=True)
class StoredStep:
    """One step as read back from a step file."""

    epoch: int
    mask_rows: int  # 1 per step, the mini-batch's size per example, 0 DropConnect
    loss: float  # float32 value
    batch_accuracy: float  # float32 value
    masks: list[np.ndarray]  # per layer, bool (rows, units); see StepLayout
    record: bytes  # the raw record, header entry and padded mask blocks


def _pad_rows(mask: np.ndarray, rows: int) -> np.ndarray:
    block = mask.reshape(-1, mask.shape[-1])  # (mask_rows, n_units)
    if len(block) == rows:
        return block
    padded = np.zeros((rows, block.shape[1]), dtype=bool)
    padded[: len(block)] = block
    return padded


class StepFile:
    """Reads and appends the records of one run's step file."""

    def __init__(self, path: Path, layout: StepLayout, header_bytes: int) -> None:
        self.path = path
        self.layout = layout
        self.header_bytes = header_bytes

    @classmethod
    def create(cls, path: Path, layout: StepLayout) -> StepFile:
        path.parent.mkdir(parents=True, exist_ok=True)
        header = layout.header()
        with path.open("wb") as handle:
            handle.write(header)
        return cls(path, layout, len(header))

    @classmethod
    def open(cls, path: Path) -> StepFile:
        """Open an existing file and cut off a partial last record."""
        with path.open("rb") as handle:
            head = handle.read(_HEADER.size)
            if len(head) < _HEADER.size:
                raise StepFileError(f"step file {path} is shorter than its header")
            magic, version, scope, header_bytes, record_bytes, max_rows, layers = (
                _HEADER.unpack(head)
            )
            if magic != MAGIC or version != VERSION:
                raise StepFileError(
                    f"step file {path} has magic {magic!r} version {version}; "
                    f"expected {MAGIC!r} version {VERSION}"
                )
            sizes = struct.unpack(f"<{layers + 1}I", handle.read(4 * (layers + 1)))
        scopes = {code: name for name, code in MASK_SCOPE_CODES.items()}
        layout = StepLayout(tuple(sizes), scopes[scope], max_rows)
        if layout.record_bytes != record_bytes:
            raise StepFileError(
                f"step file {path} declares {record_bytes}-byte records; its "
                f"layout gives {layout.record_bytes}"
            )
        step_file = cls(path, layout, header_bytes)
        step_file.truncate(step_file.step_count)
        return step_file

    @property
    def step_count(self) -> int:
        """Return the number of whole records in the file."""
        size = self.path.stat().st_size - self.header_bytes
        return max(size, 0) // self.layout.record_bytes

    def truncate(self, step_count: int) -> None:
        """Keep the first `step_count` records, dropping any later bytes."""
        os.truncate(
            self.path, self.header_bytes + step_count * self.layout.record_bytes
        )

    def read_records(self, first: int, count: int) -> list[bytes]:
        """Return the raw records of steps first .. first + count - 1."""
        record_bytes = self.layout.record_bytes
        with self.path.open("rb") as handle:
            handle.seek(self.header_bytes + first * record_bytes)
            data = handle.read(count * record_bytes)
        if len(data) != count * record_bytes:
            raise StepFileError(
                f"step file {self.path} has no steps {first}..{first + count - 1}; "
                f"it has {self.step_count} steps"
            )
        return [data[k : k + record_bytes] for k in range(0, len(data), record_bytes)]

    def read(self, step: int) -> StoredStep:
        return self.layout.decode(self.read_records(step, 1)[0])


def append_records(path: Path, records: Sequence[bytes]) -> int:
    """Append encoded records with one write call; return the bytes written."""
    data = b"".join(records)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)
    return len(data)
