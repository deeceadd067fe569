"""Rebuild a run's trainer at any recorded step from its checkpoints and step file.

Training is deterministic given the trainer state, so loading the nearest
checkpoint at or before a step and re-running the steps after it gives the
exact weights, masks and order the live run had there. Every re-run step is
compared byte for byte with its record, so a replay never silently differs.

NOTE: bit-identical re-runs assume the same numpy build and BLAS thread
count as the original run; the server pins one BLAS thread by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dropviz.storage.stepfile import StepFile
from dropviz.storage.store import RunStore
from dropviz.training.config import TrainConfig
from dropviz.training.data import Dataset
from dropviz.training.trainer import Trainer


class ReplayError(RuntimeError):
    """A re-run step that differs from its record, or a missing record."""


def nearest_checkpoint(checkpoint_steps: Sequence[int], step_count: int) -> int:
    """Return the latest checkpoint step at or before `step_count`, or 0."""
    return max((step for step in checkpoint_steps if step <= step_count), default=0)


def trainer_at(
    store: RunStore,
    run_id: str,
    config: TrainConfig,
    dataset: Dataset,
    checkpoint_steps: Sequence[int],
    step_count: int,
) -> Trainer:
    """Return a trainer of the run after `step_count` steps."""
    base = nearest_checkpoint(checkpoint_steps, step_count)
    if base == 0:
        trainer = Trainer(config, dataset)
    else:
        trainer = Trainer.from_state(
            config, store.load_checkpoint(run_id, base), dataset
        )
    roll_forward(trainer, store.step_file(run_id), step_count)
    return trainer


def roll_forward(
    trainer: Trainer,
    step_file: StepFile,
    step_count: int,
    on_epoch_end: Callable[[Trainer], None] | None = None,
) -> None:
    """Re-run the trainer up to `step_count`, checking each step against its record.

    Raises ReplayError at the first step whose masks or metrics differ.
    """
    start = trainer.step_count
    if step_count < start:
        raise ValueError(f"cannot roll back from step {start} to {step_count}")
    records = step_file.read_records(start, step_count - start)
    for stored in records:
        record = trainer.step()
        if step_file.layout.encode(record) != stored:
            raise ReplayError(
                f"re-running step {record.step} gave other masks or metrics than "
                "its record; the run's data or numpy build may have changed"
            )
        if on_epoch_end is not None and record.epoch_end:
            on_epoch_end(trainer)
