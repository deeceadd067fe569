"""Dropout masks: sampling, and the scaling applied in training and evaluation.

A unit mask is a boolean array per unit layer, True where the unit is kept,
so the masks of one step select that step's sub-network. Only the output
layer has no mask. A DropConnect mask is a boolean array per weight layer.

NOTE: a dropped unit's incoming and outgoing weights get exactly zero change
only with one mask per step and plain SGD. Per-example masks, momentum, Adam
and weight decay all move them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dropviz.training.config import MaskScope, Scaling


def keep_probabilities(drop_rates: Sequence[float]) -> list[float]:
    """Turn drop rates into keep probabilities, one per masked unit layer."""
    return [1.0 - rate for rate in drop_rates]


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


def sample_weight_masks(
    rng: np.random.Generator, layer_sizes: Sequence[int], keep_probs: Sequence[float]
) -> list[np.ndarray]:
    """Draw one step's DropConnect masks: shape (n_l, n_{l+1}) per weight layer.

    Weight layer l keeps each weight with the keep probability of its source
    unit layer l.
    """
    masks = []
    for n_in, n_out, keep_prob in zip(
        layer_sizes[:-1], layer_sizes[1:], keep_probs, strict=True
    ):
        masks.append(
            rng.random((n_in, n_out), dtype=np.float32) < np.float32(keep_prob)
        )
    return masks


def mask_scales(
    masks: Sequence[np.ndarray],
    keep_probs: Sequence[float],
    dtype: np.dtype,
    scaling: Scaling = "inverted",
) -> list[np.ndarray | None]:
    """Turn masks into training multipliers: 1/keep where kept (inverted) or 1
    (classic), and 0 where dropped.

    Inverted scaling keeps each unit's expected output equal to its output at
    evaluation. A layer with keep probability 1 gets None, which the forward
    pass reads as "multiply by nothing".
    """
    scales: list[np.ndarray | None] = []
    for mask, keep_prob in zip(masks, keep_probs, strict=True):
        if keep_prob >= 1.0:
            scales.append(None)
        elif scaling == "inverted":
            scales.append(mask.astype(dtype) * dtype.type(1.0 / keep_prob))
        else:
            scales.append(mask.astype(dtype))
    return scales


def evaluation_scales(
    keep_probs: Sequence[float], dtype: np.dtype, scaling: Scaling
) -> list[np.ndarray | None] | None:
    """Return the multipliers for evaluation, where no unit is dropped.

    Inverted scaling needs none. Classic scaling multiplies each layer's input
    by its keep probability, which equals multiplying the layer's weights by
    it: the "weight scaling" rule.
    """
    if scaling == "inverted":
        return None
    return [
        None if keep_prob >= 1.0 else np.asarray(keep_prob, dtype=dtype)
        for keep_prob in keep_probs
    ]
