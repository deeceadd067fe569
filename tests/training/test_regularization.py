"""Dropout against no dropout on the same data split and seed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dropviz.training.config import TrainConfig
from dropviz.training.trainer import Trainer

# Noisy moons with few examples: a 128-128 network without dropout fits the
# noise of its 150 training points and grows overconfident on the test points.
NOISY_MOONS = TrainConfig(
    dataset="moons",
    n_samples=200,
    noise=0.35,
    hidden_sizes=(128, 128),
    input_drop_rate=0.0,
    hidden_drop_rate=0.5,
    learning_rate=0.1,
    batch_size=16,
    epochs=400,
)


def _final_test_loss(config: TrainConfig) -> float:
    trainer = Trainer(config)
    while not trainer.done:
        trainer.step()
    return trainer.evaluate().test_loss


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_dropout_lowers_test_log_loss(seed: int) -> None:
    with_dropout = replace(NOISY_MOONS, seed=seed)
    without = replace(with_dropout, hidden_drop_rate=0.0)
    assert _final_test_loss(with_dropout) < _final_test_loss(without)
