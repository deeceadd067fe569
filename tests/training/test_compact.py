"""The compacted step against the dense masked step it replaces."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dropviz.training import dropout, mlp
from dropviz.training.compact import (
    Block,
    _scaled_relu,
    compact_forward_backward,
    compact_layout,
)
from dropviz.training.config import TrainConfig
from dropviz.training.trainer import Trainer

BASE = TrainConfig(hidden_sizes=(64, 48), batch_size=32, learning_rate=0.05)
# W[1] has 256 * 200 = 51,200 entries, enough for compact_layout, while the
# digits' W[0] (64 * 256) and W[2] (200 * 10) stay row-major.
LARGE = {"hidden_sizes": (256, 200)}


def test_block_gather_scatter_round_trip() -> None:
    matrix = np.arange(20, dtype=np.float32).reshape(4, 5)
    block = Block.of(np.array([0, 2]), np.array([1, 3, 4]), 5)
    assert block.gather(matrix).tolist() == [[1, 3, 4], [11, 13, 14]]
    block.scatter(matrix, -np.ones((2, 3), np.float32))
    assert matrix[0].tolist() == [0, -1, 2, -1, -1]
    assert matrix[1].tolist() == [5, 6, 7, 8, 9]
    expanded = block.expand(np.full((2, 3), 7.0, np.float32), (4, 5))
    assert expanded.sum() == 42.0
    assert expanded[2, 3] == 7.0


@pytest.mark.parametrize(
    ("n_in", "n_out", "dtype", "row_length"),
    [
        (784, 512, np.float32, 784),  # 49 cache lines of 16 floats: odd already
        (512, 512, np.float32, 528),  # 32 lines, padded to 33
        (5, 3, np.float32, 16),  # one line
        (512, 10, np.float64, 520),  # 64 lines of 8 doubles, padded to 65
    ],
)
def test_compact_layout_pads_rows_to_odd_lines(
    n_in: int, n_out: int, dtype: type[np.floating], row_length: int
) -> None:
    matrix = np.random.default_rng(2).standard_normal((n_in, n_out)).astype(dtype)
    stored = compact_layout(matrix)
    assert np.array_equal(stored, matrix)
    assert stored.dtype == dtype
    assert stored.base is not None
    assert stored.base.shape == (n_out, row_length)
    assert stored.strides == (matrix.itemsize, row_length * matrix.itemsize)


@pytest.mark.parametrize("reuse_rows", [True, False])
def test_block_on_compact_layout_matches_ix(reuse_rows: bool) -> None:
    rng = np.random.default_rng(8)
    # 600 kept destination units: the scatter writes them in three pieces.
    matrix = rng.standard_normal((70, 900)).astype(np.float32)
    rows = np.flatnonzero(rng.random(70) < 0.8)
    cols = np.sort(rng.choice(900, 600, replace=False))
    stored = compact_layout(matrix)
    block = Block.of(rows, cols, 900)

    gathered, kept_rows = block.gather_with_rows(stored)
    assert np.array_equal(gathered, matrix[np.ix_(rows, cols)])
    assert kept_rows is not None

    values = rng.standard_normal(block.shape).astype(np.float32)
    block.scatter(stored, values, kept_rows if reuse_rows else None)
    expected = matrix.copy()
    expected[np.ix_(rows, cols)] = values
    assert np.array_equal(stored, expected)
    assert not stored.base[:, 70:].any(), "the padding stays zero"


def test_block_scatter_into_strided_matrix_raises() -> None:
    matrix = np.zeros((6, 8), np.float32)[
        :, ::2
    ]  # neither compact_layout nor row-major
    block = Block.of(np.array([1]), np.array([0, 2]), 4)
    with pytest.raises(ValueError, match="np.ascontiguousarray or compact_layout"):
        block.scatter(matrix, np.ones((1, 2), np.float32))


@pytest.mark.parametrize("layout", ["row-major", "compact"])
@pytest.mark.parametrize("scaling", ["inverted", "classic"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_compact_gradients_equal_dense_in_float64(
    scaling: str, activation: str, layout: str
) -> None:
    rng = np.random.default_rng(1)
    sizes = [10, 9, 7, 4]
    params = mlp.init_params(sizes, "glorot", rng).astype(np.float64)
    if layout == "compact":
        params.weights = [compact_layout(w) for w in params.weights]
    x = rng.standard_normal((5, 10))
    y = np.array([0, 1, 2, 3, 1])
    keep_probs = [0.8, 0.5, 0.5]
    masks = dropout.sample_masks(rng, sizes, keep_probs, "per-step", 5)
    scales = dropout.mask_scales(masks, keep_probs, np.dtype(np.float64), scaling)
    cache = mlp.forward(params, x, activation, scales)
    loss, _, grad_logits = mlp.softmax_cross_entropy(cache.logits, y)
    dense = mlp.backward(cache, grad_logits, activation, scales)

    result = compact_forward_backward(
        params, x, y, masks, keep_probs, activation, scaling
    )
    expanded = result.dense_grads(params)
    assert result.loss == pytest.approx(loss, abs=1e-12)
    for layer in range(3):
        assert np.allclose(expanded.weights[layer], dense.weights[layer], atol=1e-12)
        assert np.allclose(expanded.biases[layer], dense.biases[layer], atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_compact_grad_scale_scales_every_gradient(activation: str) -> None:
    rng = np.random.default_rng(3)
    sizes = [10, 9, 7, 4]
    params = mlp.init_params(sizes, "glorot", rng).astype(np.float64)
    x = rng.standard_normal((6, 10))
    y = np.array([0, 1, 2, 3, 1, 0])
    keep_probs = [0.8, 0.5, 0.5]
    masks = dropout.sample_masks(rng, sizes, keep_probs, "per-step", 6)
    plain = compact_forward_backward(
        params, x, y, masks, keep_probs, activation, "inverted"
    )
    scaled = compact_forward_backward(
        params, x, y, masks, keep_probs, activation, "inverted", grad_scale=-0.3
    )
    assert scaled.loss == plain.loss
    for layer in range(3):
        assert np.allclose(
            scaled.grad_weights[layer],
            -0.3 * plain.grad_weights[layer],
            rtol=1e-12,
            atol=0,
        )
        assert np.allclose(
            scaled.grad_biases[layer],
            -0.3 * plain.grad_biases[layer],
            rtol=1e-12,
            atol=0,
        )


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"scaling": "classic"},
        {"optimizer": "momentum"},
        {"optimizer": "adam", "learning_rate": 0.001},
        {"weight_decay": 1e-3, "max_norm": 2.0},
        {"activation": "tanh", "input_drop_rate": 0.0},
        LARGE,
        {**LARGE, "optimizer": "momentum"},
        {**LARGE, "weight_decay": 1e-3, "max_norm": 2.0},
    ],
)
def test_compact_and_dense_agree_after_50_steps(changes: dict) -> None:
    config = replace(BASE, **changes)
    compact = Trainer(replace(config, compact=True))
    dense = Trainer(replace(config, compact=False))
    assert config.uses_compact_step
    layouts = [w.base is not None for w in compact.params.weights]
    assert layouts == [False, "hidden_sizes" in changes, False]
    for _ in range(50):
        record_compact = compact.step()
        record_dense = dense.step()
        for a, b in zip(record_compact.masks, record_dense.masks, strict=True):
            assert np.array_equal(a, b), "both must train the same sub-networks"
    for a, b in zip(compact.params.weights, dense.params.weights, strict=True):
        assert np.max(np.abs(a - b)) <= 1e-5 * np.max(np.abs(b))


@pytest.mark.parametrize("changes", [{}, LARGE])
def test_compact_step_deltas_match_weight_change(changes: dict) -> None:
    trainer = Trainer(replace(BASE, **changes))
    before = trainer.params.copy()
    record = trainer.step()
    for layer, delta in enumerate(record.weight_deltas):
        assert np.array_equal(
            before.weights[layer] + delta, trainer.params.weights[layer]
        )
    for layer, delta in enumerate(record.bias_deltas):
        assert np.array_equal(
            before.biases[layer] + delta, trainer.params.biases[layer]
        )


@pytest.mark.parametrize("changes", [{}, LARGE])
def test_compact_runs_are_bit_identical(changes: dict) -> None:
    config = replace(BASE, **changes)
    first, second = Trainer(config), Trainer(config)
    for _ in range(30):
        first.step()
        second.step()
    for a, b in zip(first.params.weights, second.params.weights, strict=True):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("keep_prob", [1.0, 0.8, 0.5, 0.3])
def test_scaled_relu_equals_maximum_times_factor(keep_prob: float) -> None:
    rng = np.random.default_rng(5)
    z = rng.standard_normal((64, 33)).astype(np.float32) * 3
    z[0, :4] = [0.0, -0.0, 1e-45, -1e-45]  # zeros and the smallest subnormals
    factor = 1.0 / keep_prob
    expected = np.maximum(z, 0) * np.float32(factor)
    result = _scaled_relu(z.copy(), factor)
    assert result.tobytes() == expected.tobytes()
