"""A run's states, the error for a control call its state refuses, and JSON views."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from dropviz.training.records import EpochMetrics


class RunStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"  # was running when the server stopped or crashed


FINAL_STATES = frozenset({RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.DIVERGED})
RESUMABLE_STATES = frozenset(
    {RunStatus.CREATED, RunStatus.PAUSED, RunStatus.INTERRUPTED}
)
# States that the run enters with a checkpoint of its exact step.
CHECKPOINT_STATES = FINAL_STATES | {RunStatus.PAUSED, RunStatus.INTERRUPTED}


class RunStateError(Exception):
    """A control call that the run's current state does not allow."""


def finite_or_none(value: float | None) -> float | None:
    """Map NaN and infinities to None, so that JSON never carries them."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def epoch_fields(metrics: EpochMetrics | None) -> dict[str, float | None]:
    names = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    if metrics is None:
        return dict.fromkeys(names)
    return {name: finite_or_none(getattr(metrics, name)) for name in names}


def epoch_event(metrics: EpochMetrics) -> dict[str, Any]:
    return {
        "type": "epoch",
        "epoch": metrics.epoch,
        "step": metrics.step,
        **epoch_fields(metrics),
    }
