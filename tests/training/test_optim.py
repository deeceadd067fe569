"""Update rules against hand computation, schedules and the max-norm constraint."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from dropviz.training.config import TrainConfig
from dropviz.training.mlp import Params
from dropviz.training.optim import Optimizer, apply_max_norm, learning_rate_at
from dropviz.training.trainer import Trainer

GRADIENTS = [0.5, -1.0, 2.0, 0.25]  # one scalar weight, four steps


def _run(config: TrainConfig, start: float = 1.0) -> list[float]:
    params = Params([np.array([[start]])], [np.array([0.0])])
    optimizer = Optimizer(config, params)
    values = []
    for grad in GRADIENTS:
        optimizer.update(params, Params([np.array([[grad]])], [np.array([0.0])]), 0.1)
        values.append(float(params.weights[0][0, 0]))
    return values


def test_sgd_matches_hand_computation() -> None:
    expected, a = [], 1.0
    for g in GRADIENTS:
        a -= 0.1 * g
        expected.append(a)
    assert _run(TrainConfig(optimizer="sgd")) == pytest.approx(expected, abs=1e-12)


def test_momentum_and_nesterov_match_hand_computation() -> None:
    mu = 0.9
    for name in ("momentum", "nesterov"):
        expected, a, v = [], 1.0, 0.0
        for g in GRADIENTS:
            v = mu * v - 0.1 * g
            a = a + v if name == "momentum" else a + mu * v - 0.1 * g
            expected.append(a)
        assert _run(TrainConfig(optimizer=name, momentum=mu)) == pytest.approx(
            expected, abs=1e-12
        ), name


def test_adam_matches_hand_computation() -> None:
    b1, b2, eps = 0.9, 0.999, 1e-8
    expected, a, m, s = [], 1.0, 0.0, 0.0
    for t, g in enumerate(GRADIENTS, start=1):
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        a -= 0.1 * (m / (1 - b1**t)) / (math.sqrt(s / (1 - b2**t)) + eps)
        expected.append(a)
    assert _run(TrainConfig(optimizer="adam")) == pytest.approx(expected, abs=1e-12)


def test_weight_decay_adds_l2_gradient() -> None:
    expected, a = [], 1.0
    for g in GRADIENTS:
        a -= 0.1 * (g + 0.01 * a)
        expected.append(a)
    assert _run(TrainConfig(weight_decay=0.01)) == pytest.approx(expected, abs=1e-12)


def test_max_norm_bounds_each_incoming_vector() -> None:
    weight = np.array([[3.0, 0.1], [4.0, 0.2]])
    apply_max_norm(weight, 2.0)
    assert np.linalg.norm(weight[:, 0]) == pytest.approx(2.0)
    assert weight[:, 0] / np.linalg.norm(weight[:, 0]) == pytest.approx([0.6, 0.8])
    assert weight[:, 1].tolist() == [0.1, 0.2]  # already inside the bound


def test_max_norm_holds_after_training() -> None:
    trainer = Trainer(TrainConfig(hidden_sizes=(32,), learning_rate=0.5, max_norm=0.5))
    for _ in range(50):
        trainer.step()
    for weight in trainer.params.weights:
        assert np.linalg.norm(weight, axis=0).max() <= 0.5 * (1 + 1e-6)


@pytest.mark.parametrize(
    "schedule, step, expected",
    [
        ("constant", 999, 0.2),
        ("step", 0, 0.2),
        ("step", 10 * 5 - 1, 0.2),  # last step of epoch 9
        ("step", 10 * 5, 0.1),  # first step of epoch 10
        ("step", 20 * 5 + 3, 0.05),
        ("cosine", 0, 0.2),
        ("cosine", 50, 0.1),  # halfway: 0.2 * (1 + cos(pi / 2)) / 2
        ("cosine", 75, 0.2 * (1 + math.cos(0.75 * math.pi)) / 2),
    ],
)
def test_learning_rate_schedules(schedule: str, step: int, expected: float) -> None:
    config = TrainConfig(learning_rate=0.2, lr_schedule=schedule, lr_step_epochs=10)
    assert learning_rate_at(config, step, total_steps=100, steps_per_epoch=5) == (
        pytest.approx(expected)
    )


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "adam"])
def test_dropped_unit_weights_move_under_stateful_optimizers(optimizer: str) -> None:
    config = TrainConfig(hidden_sizes=(16,), hidden_drop_rate=0.5, optimizer=optimizer)
    trainer = Trainer(config)
    moved_outside = False
    for _ in range(5):
        record = trainer.step()
        dropped = ~record.masks[1]
        moved_outside |= bool(np.any(record.weight_deltas[1][dropped, :] != 0.0))
    assert moved_outside, (
        "momentum carries updates into steps where the unit is dropped"
    )


def test_weight_decay_moves_dropped_unit_weights() -> None:
    config = TrainConfig(hidden_sizes=(16,), weight_decay=0.01)
    record = Trainer(config).step()
    dropped = ~record.masks[1]
    assert np.all(record.weight_deltas[1][dropped, :] != 0.0)


def test_plain_sgd_leaves_dropped_unit_weights_alone() -> None:
    for compact in (True, False):
        record = Trainer(
            replace(TrainConfig(hidden_sizes=(16,)), compact=compact)
        ).step()
        dropped = ~record.masks[1]
        assert np.all(record.weight_deltas[1][dropped, :] == 0.0)
        assert np.all(record.weight_deltas[0][:, dropped] == 0.0)
