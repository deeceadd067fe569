"""Mask sampling statistics and the inverted-dropout scale."""

from __future__ import annotations

import numpy as np
import pytest

from dropviz.training import dropout
from dropviz.training.config import TrainConfig

N_SAMPLES = 20_000
Z_LIMIT = 4.5  # standard deviations; seeded, so the test is deterministic


@pytest.mark.parametrize("keep_prob", [0.5, 0.8, 0.3])
def test_keep_frequency_matches_keep_probability(keep_prob: float) -> None:
    # A swap of keep and drop rate cancels out at 0.5, so test other rates too.
    rng = np.random.default_rng(11)
    sizes = [12, 9, 4]
    counts = [np.zeros(12), np.zeros(9)]
    for _ in range(N_SAMPLES):
        masks = dropout.sample_masks(rng, sizes, [keep_prob, keep_prob], "per-step", 1)
        for count, mask in zip(counts, masks, strict=True):
            count += mask
    std = np.sqrt(keep_prob * (1 - keep_prob) / N_SAMPLES)
    for count in counts:
        z_scores = np.abs(count / N_SAMPLES - keep_prob) / std
        assert z_scores.max() < Z_LIMIT


def test_keep_probabilities_input_and_hidden_rates() -> None:
    config = TrainConfig(
        hidden_sizes=(128, 32), input_drop_rate=0.2, hidden_drop_rate=0.5
    )
    assert config.layer_drop_rates == [0.2, 0.5, 0.5]
    assert dropout.keep_probabilities(config.layer_drop_rates) == [0.8, 0.5, 0.5]


def test_keep_probabilities_per_hidden_layer_rates() -> None:
    config = TrainConfig(hidden_sizes=(128, 32), hidden_drop_rates=(0.3, 0.6))
    assert config.layer_drop_rates == [0.2, 0.3, 0.6]
    with pytest.raises(ValueError, match="one rate per hidden layer"):
        TrainConfig(hidden_sizes=(128, 32), hidden_drop_rates=(0.3,))


def test_sample_masks_shapes_per_step_and_per_example() -> None:
    rng = np.random.default_rng(0)
    sizes = [6, 5, 3]
    per_step = dropout.sample_masks(rng, sizes, [0.5, 0.5], "per-step", 4)
    per_example = dropout.sample_masks(rng, sizes, [0.5, 0.5], "per-example", 4)
    assert [m.shape for m in per_step] == [(6,), (5,)]
    assert [m.shape for m in per_example] == [(4, 6), (4, 5)]
    assert all(m.dtype == bool for m in per_step + per_example)


def test_sample_masks_drop_rate_zero_keeps_all_units() -> None:
    masks = dropout.sample_masks(
        np.random.default_rng(0), [50, 40, 2], [1.0, 1.0], "per-step", 1
    )
    assert all(mask.all() for mask in masks)


def test_sample_masks_leave_global_random_state_alone() -> None:
    state = np.random.get_state()
    dropout.sample_masks(np.random.default_rng(0), [8, 8, 2], [0.5, 0.5], "per-step", 1)
    after = np.random.get_state()
    assert state[0] == after[0]
    assert np.array_equal(state[1], after[1])


def test_mask_scales_keep_expected_value() -> None:
    mask = np.array([True, False, True, True])
    (scale,) = dropout.mask_scales([mask], [0.8], np.dtype(np.float32))
    assert scale is not None
    assert scale.tolist() == pytest.approx([1.25, 0.0, 1.25, 1.25])
    # E[scale] = keep * (1 / keep) = 1: training and evaluation agree in mean.
    rng = np.random.default_rng(5)
    many = rng.random((N_SAMPLES, 1)) < 0.8
    (scales,) = dropout.mask_scales([many], [0.8], np.dtype(np.float64))
    assert scales is not None
    assert abs(scales.mean() - 1.0) < Z_LIMIT * np.sqrt(0.8 * 0.2 / N_SAMPLES) / 0.8


def test_mask_scales_keep_probability_one_is_none() -> None:
    assert dropout.mask_scales([np.ones(3, bool)], [1.0], np.dtype(np.float32)) == [
        None
    ]
