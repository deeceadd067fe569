"""Binary frames of the stream protocol, version 1 (specified in docs/protocol.md).

Every number is little-endian and every section starts at a multiple of 4
bytes, so the browser reads arrays through typed-array views without copying.
The decoder here is the reference the tests use; frontend/js/protocol.js
follows the same page.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"DVIZ"
VERSION = 1
FRAME_SNAPSHOT = 1
FRAME_STEPS = 2
# "weights" carries DropConnect masks: one bit per weight instead of per unit.
MASK_SCOPE_CODES = {"per-step": 0, "per-example": 1, "weights": 2}
DELTA_DTYPE_FLOAT32 = 0

_COMMON = struct.Struct("<4sHH")  # magic, version, frame type
_SNAPSHOT_HEADER = struct.Struct("<4sHHQII")  # ..., next_step, meta_bytes, reserved
_STEPS_HEADER = struct.Struct(
    "<4sHHQIIIHH"
)  # ..., first_step, step_count, layer_count, delta_layers, mask_scope, delta_dtype
_STEP_ENTRY = struct.Struct("<IIff")  # epoch, mask_rows, loss, batch_accuracy
_F32 = np.dtype("<f4")


class FrameError(ValueError):
    """A message that does not follow the stream protocol."""


@dataclass(frozen=True)
class StepEntry:
    """One step's row of the step table plus its bit-packed masks."""

    epoch: int
    mask_rows: int
    loss: float
    batch_accuracy: float
    packed_masks: bytes  # every masked layer's block, each padded to 4 bytes


@dataclass(frozen=True)
class SnapshotFrame:
    next_step: int
    meta: dict[str, Any]
    weights: list[np.ndarray]  # (n_l, n_{l+1}) float32
    biases: list[np.ndarray]  # (n_{l+1},) float32


@dataclass(frozen=True)
class StepsFrame:
    first_step: int
    epochs: np.ndarray  # (step_count,) uint32
    losses: np.ndarray  # (step_count,) float32
    batch_accuracies: np.ndarray  # (step_count,) float32
    # [step][layer] bool: (n_l,) per step, (rows, n_l) per example, or
    # (n_l, n_{l+1}) for DropConnect weight masks
    masks: list[list[np.ndarray]]
    mask_scope: str
    weight_deltas: list[np.ndarray | None]  # None for a layer not in the frame
    bias_deltas: list[np.ndarray | None]

    @property
    def step_count(self) -> int:
        return len(self.losses)

    @property
    def last_step(self) -> int:
        return self.first_step + self.step_count - 1


def _padding(size: int) -> int:
    return -size % 4


def pack_masks(masks: Sequence[np.ndarray]) -> bytes:
    """Bit-pack one step's masks, least significant bit first, one block per layer."""
    blocks = []
    for mask in masks:
        rows = mask.reshape(-1, mask.shape[-1])  # (mask_rows, n_units)
        block = np.packbits(rows, axis=1, bitorder="little").tobytes()
        blocks.append(block + bytes(_padding(len(block))))
    return b"".join(blocks)


def encode_snapshot(
    next_step: int,
    meta: dict[str, Any],
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
) -> bytes:
    """Encode the architecture metadata and every current weight."""
    meta_bytes = json.dumps(meta, allow_nan=False, separators=(",", ":")).encode()
    parts = [
        _SNAPSHOT_HEADER.pack(
            MAGIC, VERSION, FRAME_SNAPSHOT, next_step, len(meta_bytes), 0
        ),
        meta_bytes,
        bytes(_padding(len(meta_bytes))),
    ]
    for weight, bias in zip(weights, biases, strict=True):
        parts.append(np.ascontiguousarray(weight, dtype=_F32).tobytes())
        parts.append(np.ascontiguousarray(bias, dtype=_F32).tobytes())
    return b"".join(parts)


def encode_steps(
    first_step: int,
    entries: Sequence[StepEntry],
    weight_deltas: Sequence[np.ndarray],
    bias_deltas: Sequence[np.ndarray],
    mask_scope: str,
) -> bytes:
    """Encode consecutive steps with the sum of their deltas as one frame."""
    if not entries:
        raise ValueError("a steps frame covers at least one step")
    layer_count = len(weight_deltas)
    parts = [
        _STEPS_HEADER.pack(
            MAGIC,
            VERSION,
            FRAME_STEPS,
            first_step,
            len(entries),
            layer_count,
            (1 << layer_count) - 1,
            MASK_SCOPE_CODES[mask_scope],
            DELTA_DTYPE_FLOAT32,
        )
    ]
    parts.extend(
        _STEP_ENTRY.pack(e.epoch, e.mask_rows, e.loss, e.batch_accuracy)
        for e in entries
    )
    parts.extend(e.packed_masks for e in entries)
    for weight_delta, bias_delta in zip(weight_deltas, bias_deltas, strict=True):
        parts.append(np.ascontiguousarray(weight_delta, dtype=_F32).tobytes())
        parts.append(np.ascontiguousarray(bias_delta, dtype=_F32).tobytes())
    return b"".join(parts)


def decode_snapshot(message: bytes) -> SnapshotFrame:
    _check_common(message, FRAME_SNAPSHOT)
    _, _, _, next_step, meta_size, _ = _SNAPSHOT_HEADER.unpack_from(message)
    offset = _SNAPSHOT_HEADER.size
    meta = json.loads(message[offset : offset + meta_size])
    offset += meta_size + _padding(meta_size)
    layer_sizes = meta["layer_sizes"]
    weights, biases = [], []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
        weight, offset = _read_f32(message, offset, n_in * n_out)
        bias, offset = _read_f32(message, offset, n_out)
        weights.append(weight.reshape(n_in, n_out))
        biases.append(bias)
    _check_end(message, offset)
    return SnapshotFrame(next_step, meta, weights, biases)


def decode_steps(message: bytes, layer_sizes: Sequence[int]) -> StepsFrame:
    """Decode a steps frame; `layer_sizes` comes from the snapshot's metadata."""
    _check_common(message, FRAME_STEPS)
    (
        _,
        _,
        _,
        first_step,
        step_count,
        layer_count,
        delta_layers,
        scope_code,
        dtype_code,
    ) = _STEPS_HEADER.unpack_from(message)
    if layer_count != len(layer_sizes) - 1:
        raise FrameError(
            f"frame has {layer_count} weight layers but layer_sizes "
            f"{list(layer_sizes)} has {len(layer_sizes) - 1}"
        )
    if dtype_code != DELTA_DTYPE_FLOAT32:
        raise FrameError(
            f"unknown delta_dtype {dtype_code}; version 1 knows 0 (float32)"
        )
    scopes = {code: name for name, code in MASK_SCOPE_CODES.items()}
    if scope_code not in scopes:
        raise FrameError(f"unknown mask_scope {scope_code}; expected 0, 1 or 2")

    offset = _STEPS_HEADER.size
    table = [
        _STEP_ENTRY.unpack_from(message, offset + k * _STEP_ENTRY.size)
        for k in range(step_count)
    ]
    offset += step_count * _STEP_ENTRY.size

    masks = []
    for _epoch, mask_rows, _loss, _accuracy in table:
        step_masks = []
        for layer, n_units in enumerate(layer_sizes[:-1]):
            rows = mask_rows
            if scope_code == MASK_SCOPE_CODES["weights"]:
                # A weight mask has a row per source unit, a bit per destination.
                rows, n_units = n_units, layer_sizes[layer + 1]
            row_bytes = -(-n_units // 8)
            size = rows * row_bytes
            packed = np.frombuffer(message, np.uint8, size, offset).reshape(
                rows, row_bytes
            )
            bits = np.unpackbits(
                packed, axis=1, count=n_units, bitorder="little"
            ).astype(bool)
            step_masks.append(bits[0] if scope_code == 0 else bits)
            offset += size + _padding(size)
        masks.append(step_masks)

    weight_deltas: list[np.ndarray | None] = []
    bias_deltas: list[np.ndarray | None] = []
    for layer, (n_in, n_out) in enumerate(
        zip(layer_sizes[:-1], layer_sizes[1:], strict=True)
    ):
        if not delta_layers >> layer & 1:
            weight_deltas.append(None)
            bias_deltas.append(None)
            continue
        weight, offset = _read_f32(message, offset, n_in * n_out)
        bias, offset = _read_f32(message, offset, n_out)
        weight_deltas.append(weight.reshape(n_in, n_out))
        bias_deltas.append(bias)
    _check_end(message, offset)

    columns = np.array(table, dtype=np.float64).reshape(step_count, 4)
    return StepsFrame(
        first_step=first_step,
        epochs=columns[:, 0].astype(np.uint32),
        losses=columns[:, 2].astype(np.float32),
        batch_accuracies=columns[:, 3].astype(np.float32),
        masks=masks,
        mask_scope=scopes[scope_code],
        weight_deltas=weight_deltas,
        bias_deltas=bias_deltas,
    )


def frame_type(message: bytes) -> int:
    if len(message) < _COMMON.size:
        raise FrameError(
            f"message of {len(message)} bytes is shorter than the 8-byte header"
        )
    magic, version, kind = _COMMON.unpack_from(message)
    if magic != MAGIC:
        raise FrameError(f"bad magic {magic!r}; expected {MAGIC!r}")
    if version != VERSION:
        raise FrameError(f"unsupported protocol version {version}; expected {VERSION}")
    return int(kind)


def _check_common(message: bytes, expected_type: int) -> None:
    kind = frame_type(message)
    if kind != expected_type:
        raise FrameError(f"frame type {kind}; expected {expected_type}")


def _read_f32(message: bytes, offset: int, count: int) -> tuple[np.ndarray, int]:
    end = offset + 4 * count
    if end > len(message):
        raise FrameError(
            f"frame ends at byte {len(message)}; an array needs bytes up to {end}"
        )
    return np.frombuffer(message, _F32, count, offset).astype(np.float32), end


def _check_end(message: bytes, offset: int) -> None:
    if offset != len(message):
        raise FrameError(
            f"frame has {len(message) - offset} bytes after its last section"
        )
