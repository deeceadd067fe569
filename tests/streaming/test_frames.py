"""The frame codec against the byte layout that docs/protocol.md specifies."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from dropviz.streaming import frames
from dropviz.streaming.frames import FrameError, StepEntry

LAYER_SIZES = [64, 128, 128, 10]


def _random_step(rng: np.random.Generator, sizes: list[int], rows: int = 1):
    masks = [rng.random(n if rows == 1 else (rows, n)) < 0.5 for n in sizes[:-1]]
    weight_deltas = [
        rng.standard_normal((a, b)).astype(np.float32)
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    bias_deltas = [rng.standard_normal(b).astype(np.float32) for b in sizes[1:]]
    return masks, weight_deltas, bias_deltas


def test_steps_frame_size_matches_worked_example() -> None:
    rng = np.random.default_rng(0)
    masks, weight_deltas, bias_deltas = _random_step(rng, LAYER_SIZES)
    entry = StepEntry(0, 1, 0.5, 0.25, frames.pack_masks(masks))
    message = frames.encode_steps(7, [entry], weight_deltas, bias_deltas, "per-step")
    # 32-byte header + 16-byte step record + 8 + 16 + 16 mask bytes + 26,122 floats
    assert len(message) == 32 + 16 + 40 + 26_122 * 4 == 104_576


def test_steps_frame_header_fields_at_documented_offsets() -> None:
    rng = np.random.default_rng(1)
    masks, weight_deltas, bias_deltas = _random_step(rng, LAYER_SIZES)
    entry = StepEntry(3, 1, 1.5, 0.75, frames.pack_masks(masks))
    message = frames.encode_steps(
        2**40 + 5, [entry], weight_deltas, bias_deltas, "per-step"
    )
    assert message[0:4] == b"DVIZ"
    assert struct.unpack_from("<H", message, 4)[0] == 1  # version
    assert struct.unpack_from("<H", message, 6)[0] == 2  # steps frame
    assert struct.unpack_from("<Q", message, 8)[0] == 2**40 + 5
    assert struct.unpack_from("<I", message, 16)[0] == 1  # step_count
    assert struct.unpack_from("<I", message, 20)[0] == 3  # layer_count
    assert struct.unpack_from("<I", message, 24)[0] == 0b111  # delta_layers
    assert struct.unpack_from("<HH", message, 28) == (0, 0)  # per-step, float32
    assert struct.unpack_from("<IIff", message, 32) == (3, 1, 1.5, 0.75)
    # The first delta float follows 40 bytes of masks at offset 48.
    assert struct.unpack_from("<f", message, 88)[0] == weight_deltas[0][0, 0]


def test_mask_bits_least_significant_first() -> None:
    mask = np.zeros(12, bool)
    mask[[0, 3, 9]] = True
    packed = frames.pack_masks([mask])
    # unit 0 -> bit 0 and unit 3 -> bit 3 of byte 0; unit 9 -> bit 1 of byte 1; pad to 4
    assert packed == bytes([0b0000_1001, 0b0000_0010, 0, 0])


def test_steps_frame_round_trip_multi_step_per_example() -> None:
    rng = np.random.default_rng(2)
    sizes = [5, 9, 3]
    entries, all_masks = [], []
    total_w = [np.zeros((5, 9), np.float32), np.zeros((9, 3), np.float32)]
    total_b = [np.zeros(9, np.float32), np.zeros(3, np.float32)]
    for k in range(4):
        masks, weight_deltas, bias_deltas = _random_step(rng, sizes, rows=3)
        entries.append(StepEntry(k // 2, 3, 0.1 * k, 0.2, frames.pack_masks(masks)))
        all_masks.append(masks)
        for total, delta in zip(
            total_w + total_b, weight_deltas + bias_deltas, strict=True
        ):
            total += delta
    message = frames.encode_steps(40, entries, total_w, total_b, "per-example")
    assert len(message) % 4 == 0
    decoded = frames.decode_steps(message, sizes)
    assert decoded.first_step == 40
    assert decoded.last_step == 43
    assert decoded.mask_scope == "per-example"
    assert decoded.epochs.tolist() == [0, 0, 1, 1]
    assert decoded.losses == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=1e-6)
    for got_step, want_step in zip(decoded.masks, all_masks, strict=True):
        for got, want in zip(got_step, want_step, strict=True):
            assert np.array_equal(got, want)
    for got, want in zip(
        decoded.weight_deltas + decoded.bias_deltas, total_w + total_b, strict=True
    ):
        assert got is not None
        assert np.array_equal(got, want)


def test_snapshot_round_trip_and_alignment() -> None:
    rng = np.random.default_rng(3)
    _, weights, biases = _random_step(rng, LAYER_SIZES)
    meta = {"run_id": "abc", "layer_sizes": LAYER_SIZES, "status": "created"}
    message = frames.encode_snapshot(12, meta, weights, biases)
    meta_size = struct.unpack_from("<I", message, 16)[0]
    assert meta_size == len(json.dumps(meta, separators=(",", ":")))
    first_float = 24 + meta_size + (-meta_size % 4)
    assert first_float % 4 == 0
    assert struct.unpack_from("<f", message, first_float)[0] == weights[0][0, 0]
    decoded = frames.decode_snapshot(message)
    assert decoded.next_step == 12
    assert decoded.meta == meta
    for got, want in zip(
        decoded.weights + decoded.biases, weights + biases, strict=True
    ):
        assert np.array_equal(got, want)


@pytest.mark.parametrize(
    "message, match",
    [
        (b"DVI", "shorter"),
        (b"XXXX" + bytes(40), "magic"),
        (b"DVIZ" + struct.pack("<HH", 9, 2) + bytes(40), "version"),
    ],
)
def test_decode_rejects_malformed_messages(message: bytes, match: str) -> None:
    with pytest.raises(FrameError, match=match):
        frames.decode_steps(message, [2, 2])


def test_decode_rejects_truncated_frame() -> None:
    rng = np.random.default_rng(4)
    masks, weight_deltas, bias_deltas = _random_step(rng, [4, 3, 2])
    entry = StepEntry(0, 1, 0.0, 0.0, frames.pack_masks(masks))
    message = frames.encode_steps(0, [entry], weight_deltas, bias_deltas, "per-step")
    with pytest.raises(FrameError):
        frames.decode_steps(message[:-4], [4, 3, 2])


def _one_step_entry(rng: np.random.Generator, sizes: list[int]):
    masks, weight_deltas, bias_deltas = _random_step(rng, sizes)
    entry = StepEntry(0, 1, 0.0, 1.0, frames.pack_masks(masks))
    return entry, weight_deltas, bias_deltas


def test_float16_deltas_decode_within_documented_error() -> None:
    rng = np.random.default_rng(5)
    entry, weight_deltas, bias_deltas = _one_step_entry(rng, LAYER_SIZES)
    # Deltas span many magnitudes, as learning-rate-scaled updates do.
    weight_deltas = [
        (w * 10.0 ** rng.uniform(-9, -2, w.shape)).astype(np.float32)
        for w in weight_deltas
    ]
    weight_deltas[1][:3] = 0.0
    message = frames.encode_steps(
        0, [entry], weight_deltas, bias_deltas, "per-step", delta_dtype="float16"
    )
    assert len(message) % 4 == 0
    decoded = frames.decode_steps(message, LAYER_SIZES)
    assert decoded.delta_dtype == "float16"
    assert decoded.delta_scales is not None
    assert len(decoded.delta_scales) == 2 * 3
    got_arrays = [
        d
        for pair in zip(decoded.weight_deltas, decoded.bias_deltas, strict=True)
        for d in pair
    ]
    want_arrays = [
        d for pair in zip(weight_deltas, bias_deltas, strict=True) for d in pair
    ]
    for got, want, scale in zip(
        got_arrays, want_arrays, decoded.delta_scales, strict=True
    ):
        assert got is not None
        assert got.dtype == np.float32
        bound = (
            frames.FLOAT16_RELATIVE_ERROR * np.abs(want)
            + frames.FLOAT16_SUBNORMAL_ERROR * scale
        )
        assert np.all(np.abs(got - want) <= bound)
        assert np.all(got[want == 0.0] == 0.0)


def test_float16_scale_is_power_of_two_below_range() -> None:
    for magnitude in (1e-30, 3e-6, 0.02, 1.0, 7.5, 4e4):
        values = np.array([magnitude, -magnitude / 3], np.float32)
        scale = frames.float16_scale(values)
        mantissa, _ = np.frexp(scale)
        assert mantissa == 0.5  # a power of two
        assert np.max(np.abs(values)) / scale < 2**15
    assert frames.float16_scale(np.zeros(4, np.float32)) == 1.0
    assert frames.float16_scale(np.array([np.inf, 1.0], np.float32)) == 1.0


def test_float16_frame_about_half_float32_size() -> None:
    rng = np.random.default_rng(6)
    entry, weight_deltas, bias_deltas = _one_step_entry(rng, LAYER_SIZES)
    f32 = frames.encode_steps(0, [entry], weight_deltas, bias_deltas, "per-step")
    f16 = frames.encode_steps(
        0, [entry], weight_deltas, bias_deltas, "per-step", delta_dtype="float16"
    )
    # header, table and masks take 88 bytes; every array here has an even
    # length, so its halves need no padding
    assert len(f32) == 88 + 26_122 * 4
    assert len(f16) == 88 + 6 * 4 + 26_122 * 2


def test_float16_odd_length_array_padded_to_four_bytes() -> None:
    rng = np.random.default_rng(10)
    sizes = [3, 5, 3]  # W[0] has 15 values, b[1] has 3: both need 2 pad bytes
    entry, weight_deltas, bias_deltas = _one_step_entry(rng, sizes)
    message = frames.encode_steps(
        0, [entry], weight_deltas, bias_deltas, "per-step", delta_dtype="float16"
    )
    masks_bytes = 4 + 4
    arrays = (15 * 2 + 2) + (5 * 2 + 2) + (15 * 2 + 2) + (3 * 2 + 2)
    assert len(message) == 32 + 16 + masks_bytes + 4 * 4 + arrays
    decoded = frames.decode_steps(message, sizes)
    assert decoded.bias_deltas[1] is not None
    assert np.allclose(decoded.bias_deltas[1], bias_deltas[1], rtol=2**-11, atol=0)


def test_delta_layers_subset_round_trip() -> None:
    rng = np.random.default_rng(7)
    entry, weight_deltas, bias_deltas = _one_step_entry(rng, LAYER_SIZES)
    for dtype in ("float32", "float16"):
        message = frames.encode_steps(
            3,
            [entry],
            weight_deltas,
            bias_deltas,
            "per-step",
            delta_layers=0b100,
            delta_dtype=dtype,
        )
        assert struct.unpack_from("<I", message, 24)[0] == 0b100
        decoded = frames.decode_steps(message, LAYER_SIZES)
        assert decoded.weight_deltas[0] is None
        assert decoded.weight_deltas[1] is None
        assert decoded.bias_deltas[1] is None
        last = decoded.weight_deltas[2]
        assert last is not None
        assert np.allclose(last, weight_deltas[2], rtol=2**-11, atol=0.0)


def test_no_delta_layers_sends_masks_only() -> None:
    rng = np.random.default_rng(8)
    entry, weight_deltas, bias_deltas = _one_step_entry(rng, LAYER_SIZES)
    message = frames.encode_steps(
        0, [entry], weight_deltas, bias_deltas, "per-step", delta_layers=0
    )
    assert len(message) == 88
    decoded = frames.decode_steps(message, LAYER_SIZES)
    assert decoded.weight_deltas == [None, None, None]


def test_unknown_delta_dtype_rejected() -> None:
    rng = np.random.default_rng(9)
    entry, weight_deltas, bias_deltas = _one_step_entry(rng, [4, 3, 2])
    message = bytearray(
        frames.encode_steps(0, [entry], weight_deltas, bias_deltas, "per-step")
    )
    struct.pack_into("<H", message, 30, 7)
    with pytest.raises(FrameError, match="delta_dtype 7"):
        frames.decode_steps(bytes(message), [4, 3, 2])


def test_split_message_parts_join_to_original() -> None:
    message = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes
    parts = frames.split_message(message, 4096)
    assert len(parts) == 3
    assert all(len(part) <= 4096 for part in parts)
    for index, part in enumerate(parts):
        assert frames.frame_type(part) == frames.FRAME_PART
        assert struct.unpack_from("<IIQ", part, 8) == (index, 3, len(message))
        assert struct.unpack_from("<Q", part, 24)[0] == index * (4096 - 32)
    assembler = frames.PartAssembler()
    assert assembler.add(parts[0]) is None
    assert assembler.add(parts[1]) is None
    assert assembler.add(parts[2]) == message


def test_split_message_leaves_small_message_whole() -> None:
    assert frames.split_message(b"DVIZ" + bytes(60), 4096) == [b"DVIZ" + bytes(60)]


def test_part_out_of_order_rejected() -> None:
    parts = frames.split_message(bytes(10_000), 2048)
    assembler = frames.PartAssembler()
    with pytest.raises(FrameError, match="expected part 0"):
        assembler.add(parts[1])
