"""The recorder of a training run: its steps, epochs, state and checkpoints.

The run calls these methods from its training thread, under its state lock.
Each one encodes what it needs and queues it for the storage writer, so no
call waits for the disk unless the writer's queue is full.

Checkpoints are written every `checkpoint_steps` steps or `checkpoint_seconds`
seconds of training, whichever comes first, and whenever the run pauses,
stops, finishes or diverges. Steps taken after the last checkpoint are not
lost in a crash: the step file has them, and a restore re-runs them from the
checkpoint, checking each re-run step against its record.
"""

from __future__ import annotations

import time

from dropviz.storage.stepfile import StepLayout
from dropviz.storage.store import RunStore
from dropviz.storage.writer import CallItem, StepsItem
from dropviz.training.records import EpochMetrics, StepRecord
from dropviz.training.state import TrainerState


class RunRecorder:
    """Queues one run's steps, epochs, state changes and checkpoints."""

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        layout: StepLayout,
        checkpoint_steps: int,
        checkpoint_seconds: float,
        max_state_bytes: int,
        last_checkpoint_step: int = 0,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.layout = layout
        self.checkpoint_steps = checkpoint_steps
        self.checkpoint_seconds = checkpoint_seconds
        self.max_state_bytes = max_state_bytes
        self.last_checkpoint_step = last_checkpoint_step
        self._last_checkpoint_time = time.monotonic()

    def record_step(self, record: StepRecord) -> None:
        encoded = self.layout.encode(record)
        self.store.writer.put(StepsItem(self.run_id, record.step, [encoded]))

    def record_epoch(self, metrics: EpochMetrics) -> None:
        run_id = self.run_id
        self.store.writer.put(
            CallItem(
                run_id,
                lambda: self.store.insert_epoch(run_id, metrics),
                f"epoch={metrics.epoch}",
            )
        )

    def record_state(self, **fields: object) -> None:
        """Queue an update of the run's index row (status, step, latest metrics)."""
        run_id = self.run_id
        self.store.writer.put(
            CallItem(
                run_id,
                lambda: self.store.update_run(run_id, **fields),
                f"update {sorted(fields)}",
            )
        )

    def checkpoint_due(self, step_count: int) -> bool:
        if step_count - self.last_checkpoint_step >= self.checkpoint_steps:
            return True
        elapsed = time.monotonic() - self._last_checkpoint_time
        return (
            elapsed >= self.checkpoint_seconds
            and step_count > self.last_checkpoint_step
        )

    def checkpoint(self, state: TrainerState) -> None:
        """Queue a checkpoint, unless one at this step is already queued."""
        self._last_checkpoint_time = time.monotonic()
        if state.step_count == self.last_checkpoint_step and state.step_count > 0:
            return
        self.last_checkpoint_step = state.step_count
        if state.step_count == 0:
            return  # a fresh trainer of the same config is this state
        self.store.queue_checkpoint(self.run_id, state)

    def disk_full(self) -> bool:
        """Return whether the state folder has reached `max_state_bytes`."""
        return self.store.usage_bytes >= self.max_state_bytes

    def sync(self) -> None:
        """Wait until everything this run queued is written."""
        self.store.writer.sync()
