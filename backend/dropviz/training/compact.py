"""The compacted step: train one sub-network on its kept units only.

With one mask per layer per step, every example of the mini-batch uses the
same sub-network, so the step can gather the kept rows and columns of each
weight matrix, run the smaller matrix products, and write the result back.
It computes the same numbers as the dense masked step, which multiplies
dropped units by zero, up to float32 rounding of the sums.

A trainer stores each weight matrix of LAYOUT_MIN_ENTRIES entries or more in
`compact_layout`: the transpose of a row-major buffer with one row per
destination unit. A gather then copies whole rows for the kept destination
units and picks the kept source units inside them, and a scatter writes the
rows back, with no index per element. A matrix in any other layout goes
through flat indices into its row-major data: for the two large matrices of
784-512-512-10 at batch 256 that took about 30 % longer on the benchmark
machine of docs/benchmarks.md.
Every `take` passes mode="wrap" because its indices are in range by
construction: numpy 2.4's default mode="raise" took 40 to 60 % longer on the
784-512-512-10 benchmark's arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from dropviz.training.config import Activation, Scaling
from dropviz.training.mlp import (
    Params,
    activate,
    activation_derivative,
    softmax_cross_entropy,
)

CACHE_LINE_BYTES = 64  # on x86-64 and most ARM64 cores
# Below about this many entries the row path's fixed cost (a few microseconds
# of Python per block) outweighs its savings. The two paths broke even near
# 200 x 200 float32 on the benchmark machine.
LAYOUT_MIN_ENTRIES = 40_000
# Rows of the gathered copy that one strided write covers: 256 cache lines,
# 16 KiB, stay in a 32 KiB L1 data cache while the write walks down a column.
SCATTER_ROWS = 256


def compact_layout(matrix: np.ndarray) -> np.ndarray:
    """Return a copy of `matrix` (n_in, n_out) that transposes a padded buffer.

    The buffer is row-major (n_out, row_length), and each row spans an odd
    number of cache lines. Writing one column of a gathered copy then touches
    rows that fall into different cache sets. With a power-of-two row length,
    such as 512 float32, they share a few sets and the write runs several
    times slower.
    """
    n_in, n_out = matrix.shape
    per_line = CACHE_LINE_BYTES // matrix.itemsize
    lines = -(-n_in // per_line)  # ceiling division
    lines += 1 - lines % 2  # odd
    buffer = np.zeros((n_out, lines * per_line), dtype=matrix.dtype)
    view = buffer[:, :n_in].T  # (n_in, n_out)
    view[...] = matrix
    return view


def _row_buffer(matrix: np.ndarray) -> np.ndarray | None:
    """Return the buffer behind a `compact_layout` matrix, or None for another."""
    buffer = matrix.base
    if (
        isinstance(buffer, np.ndarray)
        and buffer.ndim == 2
        and buffer.flags.c_contiguous
        and buffer.shape[0] == matrix.shape[1]
        and buffer.shape[1] >= matrix.shape[0]
        and matrix.strides == (matrix.itemsize, buffer.strides[0])
        and matrix.ctypes.data == buffer.ctypes.data
    ):
        return buffer
    return None


@dataclass(frozen=True)
class Block:
    """The kept rows and columns of one weight matrix."""

    rows: np.ndarray  # kept source units, ascending
    cols: np.ndarray  # kept destination units, ascending
    n_out: int  # columns of the whole matrix

    @classmethod
    def of(cls, rows: np.ndarray, cols: np.ndarray, n_out: int) -> Block:
        return cls(rows, cols, n_out)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)

    @cached_property
    def flat(self) -> np.ndarray:
        """rows[i] * n_out + cols[j], row-major: (len(rows) * len(cols),).

        Built on first use, because blocks of compact_layout matrices never
        need it.
        """
        flat: np.ndarray = (self.rows[:, None] * self.n_out + self.cols).ravel()
        return flat

    def gather(self, matrix: np.ndarray) -> np.ndarray:
        """Return a copy of the block: (len(rows), len(cols))."""
        return self.gather_with_rows(matrix)[0]

    def gather_with_rows(
        self, matrix: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Return a copy of the block and the buffer rows it was taken from.

        For a `compact_layout` matrix the block's copy is column-major, and
        the rows are the buffer's rows of the kept destination units:
        (len(cols), row_length). For another matrix the rows are None.
        Passing them to `scatter` saves copying them a second time.
        """
        buffer = _row_buffer(matrix)
        if buffer is None:
            flat_values = _flat_view(matrix).take(self.flat, mode="wrap")
            return flat_values.reshape(self.shape), None
        kept_rows = buffer.take(self.cols, axis=0, mode="wrap")
        return kept_rows.take(self.rows, axis=1, mode="wrap").T, kept_rows

    def scatter(
        self,
        matrix: np.ndarray,
        values: np.ndarray,
        kept_rows: np.ndarray | None = None,
    ) -> None:
        """Write `values` (the block's shape) into `matrix` in place.

        `kept_rows` must come from `gather_with_rows` on the same matrix,
        unchanged since, and is overwritten.
        """
        if kept_rows is not None:
            buffer = matrix.base  # as gather_with_rows found it
            if buffer is None:
                raise ValueError(
                    "kept_rows was passed for a matrix outside compact_layout. "
                    "Pass what gather_with_rows returned for this matrix: None."
                )
        else:
            buffer = _row_buffer(matrix)
            if buffer is None:
                _flat_view(matrix)[self.flat] = values.reshape(-1)
                return
            kept_rows = buffer.take(self.cols, axis=0, mode="wrap")
        values_by_row = values.T  # (k_out, k_in)
        for start in range(0, len(self.cols), SCATTER_ROWS):
            stop = start + SCATTER_ROWS
            kept_rows[start:stop, self.rows] = values_by_row[start:stop]
        buffer[self.cols] = kept_rows

    def expand(self, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Return a zero matrix of `shape` with `values` in this block."""
        dense = np.zeros(shape, dtype=values.dtype)
        self.scatter(dense, values)
        return dense


def _flat_view(matrix: np.ndarray) -> np.ndarray:
    if not matrix.flags.c_contiguous:
        raise ValueError(
            "a block needs a row-major matrix or one from compact_layout, got a "
            f"{matrix.shape} matrix with strides {matrix.strides}. Copy it with "
            "np.ascontiguousarray or compact_layout first."
        )
    return matrix.reshape(-1)


@dataclass
class CompactResult:
    """One compacted forward and backward pass."""

    loss: float
    predicted: np.ndarray  # (batch,) class index
    blocks: list[Block]  # per weight layer
    sub_weights: list[np.ndarray]  # W[l] gathered to its block
    # The rows each gather copied, for the scatter (see Block.gather_with_rows).
    kept_rows: list[np.ndarray | None]
    # Both times the pass's grad_scale, which is 1 unless the caller set it.
    grad_weights: list[np.ndarray]  # dLoss/dW of each block: (k_l, k_{l+1})
    grad_biases: list[np.ndarray]  # dLoss/db of the kept biases: (k_{l+1},)

    def dense_grads(self, params: Params) -> Params:
        """Return the full-size gradients, zero outside the sub-network."""
        weights = [
            block.expand(grad, weight.shape)
            for block, grad, weight in zip(
                self.blocks, self.grad_weights, params.weights, strict=True
            )
        ]
        biases = []
        for block, grad, bias in zip(
            self.blocks, self.grad_biases, params.biases, strict=True
        ):
            dense = np.zeros_like(bias)
            dense[block.cols] = grad
            biases.append(dense)
        return Params(weights, biases)


def _scaled_relu(z: np.ndarray, factor: float) -> np.ndarray:
    """Overwrite `z` with `factor * max(z, 0)` and return it.

    z + |z| is exactly 2 * max(z, 0), and halving is exact, so the result
    equals `np.maximum(z, 0) * factor` bit for bit. The two passes of abs and
    add take about a third of the time of np.maximum on float32 (numpy 2.4).
    NOTE: it differs where z is -inf (NaN instead of 0) or above half the
    dtype's maximum (inf instead of z times the factor), which only a
    diverged run reaches.
    """
    z += np.abs(z)
    scale = z.dtype.type(0.5 * factor)
    if scale != 1:
        z *= scale
    return z


def compact_forward_backward(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    masks: Sequence[np.ndarray],
    keep_probs: Sequence[float],
    activation: Activation,
    scaling: Scaling,
    grad_scale: float = 1.0,
) -> CompactResult:
    """Compute loss and gradients of the sub-network that per-step `masks` select.

    Every gradient, but not the loss, comes out multiplied by `grad_scale`.
    The backward pass is linear in dLoss/dlogits, so scaling that small array
    scales them all. Plain SGD passes -learning_rate and so gets each block's
    step directly.
    """
    n_classes = params.weights[-1].shape[1]
    kept = [np.flatnonzero(mask) for mask in masks] + [np.arange(n_classes)]
    # All kept units of a layer share one inverted-dropout factor, a scalar.
    factors = [
        1.0 / keep if scaling == "inverted" and keep < 1.0 else 1.0
        for keep in keep_probs
    ]

    blocks, sub_weights, kept_rows, layer_inputs, hidden_outputs = [], [], [], [], []
    h = x.take(kept[0], axis=1, mode="wrap")  # (batch, k_0)
    if factors[0] != 1.0:
        h *= h.dtype.type(factors[0])
    n_layers = len(params.weights)
    for layer in range(n_layers):
        n_out = params.weights[layer].shape[1]
        block = Block.of(kept[layer], kept[layer + 1], n_out)
        sub_weight, rows = block.gather_with_rows(params.weights[layer])
        blocks.append(block)
        sub_weights.append(sub_weight)  # (k_l, k_{l+1})
        kept_rows.append(rows)
        layer_inputs.append(h)
        z = h @ sub_weight  # (batch, k_{l+1})
        z += params.biases[layer].take(kept[layer + 1], mode="wrap")
        if layer == n_layers - 1:
            logits = z
            break
        factor = factors[layer + 1]
        if activation == "relu":
            # The backward pass needs only where the output is positive, and
            # the scaled output is positive at the same units.
            h = _scaled_relu(z, factor)
            hidden_outputs.append(h)
        else:
            a = activate(z, activation)  # (batch, k_{l+1})
            hidden_outputs.append(a)
            h = a * a.dtype.type(factor) if factor != 1.0 else a

    loss, predicted, dz = softmax_cross_entropy(logits, y)
    if grad_scale != 1.0:
        dz = dz * dz.dtype.type(grad_scale)  # (batch, n_classes)
    grad_weights: list[np.ndarray] = [np.empty(0)] * n_layers
    grad_biases: list[np.ndarray] = [np.empty(0)] * n_layers
    # A matrix-vector product sums the columns about twice as fast as
    # dz.sum(axis=0) on (256, 256) float32.
    ones = np.ones(len(x), dtype=dz.dtype)  # (batch,)
    for layer in range(n_layers - 1, -1, -1):
        if sub_weights[layer].flags.c_contiguous:
            grad_weights[layer] = layer_inputs[layer].T @ dz
        else:
            # Column-major like the gathered block, so the update and the
            # scatter read both in one order.
            grad_weights[layer] = (dz.T @ layer_inputs[layer]).T
        grad_biases[layer] = ones @ dz
        if layer == 0:
            break
        dh = dz @ sub_weights[layer].T  # (batch, k_l)
        if factors[layer] != 1.0:
            dh *= dh.dtype.type(factors[layer])
        if activation == "relu":
            # In place: ReLU's derivative is 1 where the output is positive.
            np.multiply(dh, hidden_outputs[layer - 1] > 0, out=dh)
            dz = dh
        else:
            dz = dh * activation_derivative(hidden_outputs[layer - 1], activation)

    return CompactResult(
        loss, predicted, blocks, sub_weights, kept_rows, grad_weights, grad_biases
    )
