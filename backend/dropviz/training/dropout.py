"""Dropout masks: sampling, and the inverted scaling applied during training.

A mask is a boolean array per unit layer, True where the unit is kept, so the
masks of one step select that step's sub-network. Only the output layer has
no mask.

NOTE: a dropped unit's incoming and outgoing weights get exactly zero change
only with one mask per step and plain SGD. Per-example masks, momentum and
weight decay all move them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dropviz.training.config import MaskScope


def keep_probabilities(
    layer_sizes: Sequence[int], input_drop_rate: float, hidden_drop_rate: float
) -> list[float]:
    """Return the keep probability of every unit layer that has a mask."""
    n_masked = len(layer_sizes) - 1  # every unit layer but the output
    return [1.0 - input_drop_rate] + [1.0 - hidden_drop_rate] * (n_masked - 1)


def sample_masks(
    rng: np.random.Generator,
    layer_sizes: Sequence[int],
    keep_probs: Sequence[float],
    scope: MaskScope,
    batch_rows: int,
) -> list[np.ndarray]:
    """Draw one step's masks: shape (n_units,) per layer, or (batch_rows, n_units).

    Every layer draws from `rng` even when its keep probability is 1, so the
    random stream, and with it every later mask, does not depend on which
    layers happen to have dropout turned off.
    """
    masks = []
    for n_units, keep_prob in zip(layer_sizes[:-1], keep_probs, strict=True):
        shape = (n_units,) if scope == "per-step" else (batch_rows, n_units)
        masks.append(rng.random(shape, dtype=np.float32) < np.float32(keep_prob))
    return masks


def mask_scales(
    masks: Sequence[np.ndarray], keep_probs: Sequence[float], dtype: np.dtype
) -> list[np.ndarray | None]:
    """Turn masks into inverted-dropout multipliers: 1/keep where kept, else 0.

    The scaling keeps each unit's expected output equal to its output at
    evaluation, where no mask is applied. A layer with keep probability 1 gets
    None, which the forward pass reads as "multiply by nothing".
    """
    scales: list[np.ndarray | None] = []
    for mask, keep_prob in zip(masks, keep_probs, strict=True):
        if keep_prob >= 1.0:
            scales.append(None)
        else:
            scales.append(mask.astype(dtype) * dtype.type(1.0 / keep_prob))
    return scales
