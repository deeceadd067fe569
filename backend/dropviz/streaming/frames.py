"""Binary frames of the stream protocol, version 1 (specified in docs/protocol.md).

Every number is little-endian and every section starts at a multiple of 4
bytes, so the browser reads arrays through typed-array views without copying.
A message longer than the server's maximum message size travels as part
frames that the receiver joins before decoding. The decoder here is the
reference the tests use; frontend/js/protocol.js follows the same page.
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
FRAME_PART = 3
# "weights" carries DropConnect masks: one bit per weight instead of per unit.
MASK_SCOPE_CODES = {"per-step": 0, "per-example": 1, "weights": 2}
DELTA_DTYPE_FLOAT32 = 0
DELTA_DTYPE_FLOAT16 = 1
DELTA_DTYPE_CODES = {"float32": DELTA_DTYPE_FLOAT32, "float16": DELTA_DTYPE_FLOAT16}
MAX_WEIGHT_LAYERS = 32  # delta_layers is a u32 bitmask
# A float16 delta is stored as delta / scale with a power-of-two scale that
# maps the largest magnitude below 2**15, inside float16's finite range (65504).
FLOAT16_SCALED_MAX_EXPONENT = 15
FLOAT16_MIN_SCALE_EXPONENT = -126  # float32's smallest normal power of two
# float16 keeps 11 significant bits: rounding changes a normal value by at most
# 2**-11 of its magnitude, and a subnormal one by at most 2**-25 (in scaled units).
FLOAT16_RELATIVE_ERROR = 2.0**-11
FLOAT16_SUBNORMAL_ERROR = 2.0**-25
MIN_PART_PAYLOAD_BYTES = 1024

_COMMON = struct.Struct("<4sHH")  # magic, version, frame type
_SNAPSHOT_HEADER = struct.Struct("<4sHHQII")  # ..., next_step, meta_bytes, reserved
_STEPS_HEADER = struct.Struct(
    "<4sHHQIIIHH"
)  # ..., first_step, step_count, layer_count, delta_layers, mask_scope, delta_dtype
_STEP_ENTRY = struct.Struct("<IIff")  # epoch, mask_rows, loss, batch_accuracy
_PART_HEADER = struct.Struct("<4sHHIIQQ")  # ..., index, count, total_bytes, offset
_F32 = np.dtype("<f4")
_F16 = np.dtype("<f2")


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
    delta_dtype: str = "float32"  # how the deltas travelled; decoded as float32
    delta_scales: list[float] | None = None  # float16 only: W[l], b[l] per sent layer

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


def all_layers(layer_count: int) -> int:
    """Return the `delta_layers` bitmask that selects every weight layer."""
    return (1 << layer_count) - 1


def encode_steps(
    first_step: int,
    entries: Sequence[StepEntry],
    weight_deltas: Sequence[np.ndarray],
    bias_deltas: Sequence[np.ndarray],
    mask_scope: str,
    delta_layers: int | None = None,
    delta_dtype: str = "float32",
) -> bytes:
    """Encode consecutive steps with the sum of their deltas as one frame.

    `delta_layers` is a bitmask of the weight layers whose deltas go into the
    frame (None: all); `delta_dtype` is "float32" or "float16".
    """
    return encode_packed_steps(
        first_step,
        len(entries),
        b"".join(step_table_row(e) for e in entries),
        b"".join(e.packed_masks for e in entries),
        weight_deltas,
        bias_deltas,
        mask_scope,
        delta_layers,
        delta_dtype,
    )


def step_table_row(entry: StepEntry) -> bytes:
    """Return the 16-byte step-table record of one step."""
    return _STEP_ENTRY.pack(
        entry.epoch, entry.mask_rows, entry.loss, entry.batch_accuracy
    )


def encode_packed_steps(
    first_step: int,
    step_count: int,
    step_table: bytes | bytearray,
    packed_masks: bytes | bytearray,
    weight_deltas: Sequence[np.ndarray],
    bias_deltas: Sequence[np.ndarray],
    mask_scope: str,
    delta_layers: int | None = None,
    delta_dtype: str = "float32",
) -> bytes:
    """Encode a steps frame from its step table and masks, already packed.

    `step_table` contains `step_count` records of `step_table_row`, and
    `packed_masks` each step's `pack_masks` output, in step order.
    """
    if step_count < 1:
        raise ValueError("a steps frame covers at least one step")
    if len(step_table) != step_count * _STEP_ENTRY.size:
        raise ValueError(
            f"step table of {len(step_table)} bytes does not hold "
            f"{step_count} records of {_STEP_ENTRY.size} bytes"
        )
    layer_count = len(weight_deltas)
    if layer_count > MAX_WEIGHT_LAYERS:
        raise ValueError(
            f"a frame carries at most {MAX_WEIGHT_LAYERS} weight layers, "
            f"got {layer_count}"
        )
    if delta_layers is None:
        delta_layers = all_layers(layer_count)
    parts: list[bytes | bytearray | memoryview] = [
        _STEPS_HEADER.pack(
            MAGIC,
            VERSION,
            FRAME_STEPS,
            first_step,
            step_count,
            layer_count,
            delta_layers,
            MASK_SCOPE_CODES[mask_scope],
            DELTA_DTYPE_CODES[delta_dtype],
        ),
        step_table,
        packed_masks,
    ]

    arrays: list[np.ndarray] = []
    for layer, (weight_delta, bias_delta) in enumerate(
        zip(weight_deltas, bias_deltas, strict=True)
    ):
        if delta_layers >> layer & 1:
            arrays.extend((weight_delta, bias_delta))
    if delta_dtype == "float32":
        # The join copies each array straight from its buffer, with no
        # intermediate bytes object: these are megabytes per frame.
        parts.extend(np.ascontiguousarray(a, dtype=_F32).data.cast("B") for a in arrays)
    else:
        scaled = [_to_scaled_float16(a) for a in arrays]
        parts.append(np.array([scale for scale, _ in scaled], dtype=_F32).tobytes())
        for _, values in scaled:
            block = values.tobytes()
            parts.append(block + bytes(_padding(len(block))))
    return b"".join(parts)


def float16_scale(values: np.ndarray) -> float:
    """Return the power of two that float16 deltas of `values` are divided by.

    1.0 for an all-zero or non-finite array: a diverged run's deltas are cast
    as they are, so infinities and NaN stay visible.
    """
    max_abs = float(np.max(np.abs(values))) if values.size else 0.0
    if max_abs == 0.0 or not np.isfinite(max_abs):
        return 1.0
    _, exponent = np.frexp(max_abs)  # max_abs < 2**exponent
    scale_exponent = max(
        int(exponent) - FLOAT16_SCALED_MAX_EXPONENT, FLOAT16_MIN_SCALE_EXPONENT
    )
    return float(np.ldexp(1.0, scale_exponent))


def _to_scaled_float16(values: np.ndarray) -> tuple[float, np.ndarray]:
    scale = float16_scale(values)
    # Dividing by a power of two is exact, so float16 rounding is the only error.
    scaled = np.asarray(values, dtype=np.float32) * np.float32(1.0 / scale)
    return scale, scaled.astype(_F16).ravel()


def split_message(message: bytes, max_bytes: int) -> list[bytes]:
    """Split `message` into part frames of at most `max_bytes` each.

    A message that already fits is returned alone, unchanged.
    """
    if len(message) <= max_bytes:
        return [message]
    payload_bytes = (max_bytes - _PART_HEADER.size) // 4 * 4
    if payload_bytes < MIN_PART_PAYLOAD_BYTES:
        raise ValueError(
            f"max_bytes {max_bytes} leaves less than {MIN_PART_PAYLOAD_BYTES} "
            "bytes of payload per part"
        )
    count = -(-len(message) // payload_bytes)
    return [
        _PART_HEADER.pack(
            MAGIC,
            VERSION,
            FRAME_PART,
            index,
            count,
            len(message),
            index * payload_bytes,
        )
        + message[index * payload_bytes : (index + 1) * payload_bytes]
        for index in range(count)
    ]


class PartAssembler:
    """Reassembly of a split message from its part frames, in arrival order."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._count = 0
        self._total = 0
        self._received = 0

    def add(self, message: bytes) -> bytes | None:
        """Take one part; return the whole message once its last part arrived."""
        _check_common(message, FRAME_PART)
        if len(message) < _PART_HEADER.size:
            raise FrameError(f"part frame of {len(message)} bytes has no full header")
        _, _, _, index, count, total, offset = _PART_HEADER.unpack_from(message)
        if index != len(self._chunks):
            raise FrameError(f"part {index} arrived; expected part {len(self._chunks)}")
        if index == 0:
            self._count, self._total, self._received = count, total, 0
        elif (count, total) != (self._count, self._total):
            raise FrameError("part frame belongs to another message")
        if offset != self._received:
            raise FrameError(f"part offset {offset}; expected {self._received}")
        payload = message[_PART_HEADER.size :]
        self._chunks.append(payload)
        self._received += len(payload)
        if index + 1 < count:
            return None
        whole = b"".join(self._chunks)
        self._chunks = []
        if len(whole) != total:
            raise FrameError(f"parts carry {len(whole)} bytes; expected {total}")
        return whole


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
    dtypes = {code: name for name, code in DELTA_DTYPE_CODES.items()}
    if dtype_code not in dtypes:
        raise FrameError(
            f"unknown delta_dtype {dtype_code}; expected 0 (float32) or 1 (float16)"
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

    shapes = [
        (n_in, n_out) if delta_layers >> layer & 1 else None
        for layer, (n_in, n_out) in enumerate(
            zip(layer_sizes[:-1], layer_sizes[1:], strict=True)
        )
    ]
    scales: list[float] | None = None
    if dtype_code == DELTA_DTYPE_FLOAT16:
        scale_count = 2 * sum(shape is not None for shape in shapes)
        scale_array, offset = _read_f32(message, offset, scale_count)
        scales = [float(scale) for scale in scale_array]
    scale_iter = iter(scales or [])

    weight_deltas: list[np.ndarray | None] = []
    bias_deltas: list[np.ndarray | None] = []
    for shape in shapes:
        if shape is None:
            weight_deltas.append(None)
            bias_deltas.append(None)
            continue
        n_in, n_out = shape
        if scales is None:
            weight, offset = _read_f32(message, offset, n_in * n_out)
            bias, offset = _read_f32(message, offset, n_out)
        else:
            weight, offset = _read_f16(message, offset, n_in * n_out, next(scale_iter))
            bias, offset = _read_f16(message, offset, n_out, next(scale_iter))
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
        delta_dtype=dtypes[dtype_code],
        delta_scales=scales,
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


def _read_f16(
    message: bytes, offset: int, count: int, scale: float
) -> tuple[np.ndarray, int]:
    end = offset + 2 * count
    if end > len(message):
        raise FrameError(
            f"frame ends at byte {len(message)}; an array needs bytes up to {end}"
        )
    values = np.frombuffer(message, _F16, count, offset).astype(np.float32)
    return values * np.float32(scale), end + _padding(2 * count)


def _check_end(message: bytes, offset: int) -> None:
    if offset != len(message):
        raise FrameError(
            f"frame has {len(message) - offset} bytes after its last section"
        )
