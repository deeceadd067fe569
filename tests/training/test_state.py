"""Trainer state: a trainer rebuilt from a saved state continues bit-identically."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dropviz.training.config import TrainConfig
from dropviz.training.state import TrainerState
from dropviz.training.trainer import Trainer

# 75 training examples in batches of 10: 8 steps per epoch, the last one short.
MOONS = TrainConfig(
    dataset="moons", n_samples=100, hidden_sizes=(16, 16), batch_size=10
)


def _parameters(trainer: Trainer) -> list[np.ndarray]:
    return trainer.params.weights + trainer.params.biases


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"optimizer": "momentum", "weight_decay": 1e-3},
        {"optimizer": "nesterov"},
        {"optimizer": "adam", "learning_rate": 0.01},
        {"mask_scope": "per-example"},
        {"variant": "dropconnect"},
        {"compact": False, "max_norm": 2.0, "lr_schedule": "cosine"},
        {"hidden_sizes": (256, 200)},  # W[1] large enough for compact_layout
    ],
)
def test_from_state_continues_bit_identically(changes: dict[str, object]) -> None:
    config = replace(MOONS, **changes)  # type: ignore[arg-type]
    reference = Trainer(config)
    for _ in range(13):  # stops mid-epoch, so the saved order matters
        reference.step()
    state = reference.state_dict()

    resumed = Trainer.from_state(config, state, reference.dataset)
    for _ in range(20):
        expected = reference.step()
        actual = resumed.step()
        for mine, theirs in zip(actual.masks, expected.masks, strict=True):
            assert np.array_equal(mine, theirs)
        assert actual.loss == expected.loss
    for mine, theirs in zip(_parameters(resumed), _parameters(reference), strict=True):
        assert mine.tobytes() == theirs.tobytes()


def test_state_is_a_copy_of_the_trainer() -> None:
    trainer = Trainer(MOONS)
    state = trainer.state_dict()
    before = state.weights[0].copy()
    trainer.step()
    assert np.array_equal(state.weights[0], before)
    assert state.step_count == 0


def test_state_arrays_round_trip() -> None:
    config = replace(MOONS, optimizer="adam")
    trainer = Trainer(config)
    for _ in range(5):
        trainer.step()
    state = trainer.state_dict()
    restored = TrainerState.from_arrays(state.to_arrays())
    assert restored.step_count == 5
    assert restored.optimizer_step_count == 5
    assert restored.mask_rng_state == state.mask_rng_state
    assert restored.shuffle_rng_state == state.shuffle_rng_state
    assert np.array_equal(restored.order, state.order)
    assert len(restored.velocity) == len(restored.second_moment) == 6  # 3 W, 3 b
    for mine, theirs in zip(restored.weights, state.weights, strict=True):
        assert mine.tobytes() == theirs.tobytes()


def test_from_arrays_missing_array_raises() -> None:
    arrays = Trainer(MOONS).state_dict().to_arrays()
    del arrays["order"]
    with pytest.raises(ValueError, match="lacks the array 'order'"):
        TrainerState.from_arrays(arrays)


def test_load_state_other_architecture_raises() -> None:
    state = Trainer(MOONS).state_dict()
    other = replace(MOONS, hidden_sizes=(8,))
    with pytest.raises(ValueError, match="weight shapes"):
        Trainer.from_state(other, state)
