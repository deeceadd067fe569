"""The registry of runs in this server process, with its limits.

With a RunStore, every run is also stored: created runs get a folder and an
index row, and `restore` brings back every stored run after a restart.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass

from dropviz.runs.run import Run
from dropviz.runs.states import RunStatus
from dropviz.storage.recorder import RunRecorder
from dropviz.storage.stepfile import StepLayout
from dropviz.storage.store import RunStore
from dropviz.streaming.hub import CLOSE_GOING_AWAY, CLOSE_NORMAL
from dropviz.training.config import TrainConfig, is_csv_dataset
from dropviz.training.data import Dataset

logger = logging.getLogger(__name__)


class RunNotFoundError(KeyError):
    """No run has the requested id."""


class RunLimitError(Exception):
    """Starting one more run would pass a configured limit."""


@dataclass(frozen=True)
class StoragePolicy:
    """When runs write checkpoints, and how much they may store."""

    checkpoint_steps: int = 1000
    checkpoint_seconds: float = 60.0
    max_stored_runs: int = 100
    max_state_bytes: int = 2 * 1024**3


class RunManager:
    """Creates, finds and deletes runs; enforces the run and storage limits."""

    def __init__(
        self,
        max_running_runs: int,
        max_merge_steps: int,
        store: RunStore | None = None,
        policy: StoragePolicy | None = None,
    ) -> None:
        self.max_running_runs = max_running_runs
        self.max_merge_steps = max_merge_steps
        self.store = store
        self.policy = policy or StoragePolicy()
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def check_room(self, action: str) -> None:
        """Raise RunLimitError if one more run would pass a storage limit."""
        with self._lock:
            count = len(self._runs)
        limit = self.policy.max_stored_runs
        if count >= limit:
            raise RunLimitError(
                f"Cannot {action}: {count} runs are stored and max_stored_runs is "
                f"{limit}. Delete a run first, or raise DROPVIZ_MAX_STORED_RUNS."
            )
        self._check_disk(action)

    def _check_disk(self, action: str) -> None:
        if self.store is None:
            return
        usage, limit = self.store.usage_bytes, self.policy.max_state_bytes
        if usage >= limit:
            raise RunLimitError(
                f"Cannot {action}: the state folder uses {usage:,} bytes and "
                f"max_state_bytes is {limit:,}. Delete runs first, or raise "
                "DROPVIZ_MAX_STATE_BYTES."
            )

    def create(
        self,
        config: TrainConfig,
        max_steps_per_second: float | None = None,
        dataset: Dataset | None = None,
    ) -> Run:
        """Create a run; without `dataset` the trainer loads `config.dataset`.

        Raises RunLimitError when max_stored_runs or max_state_bytes is reached.
        """
        self.check_room("create a run")
        run_id = uuid.uuid4().hex[:12]
        run = Run(run_id, config, max_steps_per_second, self.max_merge_steps, dataset)
        if self.store is not None:
            self._store_new(run)
        with self._lock:
            self._runs[run.id] = run
        logger.info(
            "run created: run_id=%s dataset=%s layer_sizes=%s",
            run.id,
            run.trainer.dataset.name,
            run.trainer.layer_sizes,
        )
        return run

    def _store_new(self, run: Run) -> None:
        assert self.store is not None
        layout = step_layout(run)
        dataset_npz = run.dataset_npz() if is_csv_dataset(run.config.dataset) else None
        self.store.insert_run(
            run.id,
            run.created_at,
            run.config.to_dict(),
            run.status.value,
            run.max_steps_per_second,
            layout,
            dataset_npz,
        )
        run.recorder = self.recorder_for(run.id, layout)

    def recorder_for(
        self, run_id: str, layout: StepLayout, last_checkpoint_step: int = 0
    ) -> RunRecorder:
        assert self.store is not None
        return RunRecorder(
            self.store,
            run_id,
            layout,
            self.policy.checkpoint_steps,
            self.policy.checkpoint_seconds,
            self.policy.max_state_bytes,
            last_checkpoint_step,
        )

    def add(self, run: Run) -> None:
        """Register a run rebuilt from storage or imported from an archive."""
        with self._lock:
            self._runs[run.id] = run

    def get(self, run_id: str) -> Run:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    def list(self) -> list[Run]:
        with self._lock:
            return sorted(self._runs.values(), key=lambda run: run.created_at)

    def start(self, run_id: str) -> Run:
        run = self.get(run_id)
        with self._lock:
            running = sum(
                1 for other in self._runs.values() if other.status == RunStatus.RUNNING
            )
            if run.status != RunStatus.RUNNING:
                self._check_disk(f"start run {run_id}")
            if run.status != RunStatus.RUNNING and running >= self.max_running_runs:
                raise RunLimitError(
                    f"Cannot start run {run_id}: {running} runs are already running "
                    f"and max_running_runs is {self.max_running_runs}. "
                    "Pause or stop one first."
                )
            run.start()
        return run

    def delete(self, run_id: str) -> None:
        run = self.get(run_id)
        run.halt()
        with self._lock:
            self._runs.pop(run_id, None)
        if self.store is not None:
            self.store.delete_run(run_id)
        run.hub.close_all(CLOSE_NORMAL, "run deleted")
        logger.info("run deleted: run_id=%s", run_id)

    def stream_count(self) -> int:
        """Return the number of open streams over all runs."""
        return sum(run.hub.client_count for run in self.list())

    def shutdown(self) -> None:
        """Halt every running run as interrupted and close every stream.

        Each halted run writes a checkpoint of its exact step before this
        returns, and streams first send what is pending, its status included.
        """
        for run in self.list():
            run.suspend()
            run.hub.close_all(CLOSE_GOING_AWAY, "server shutting down")


def step_layout(run: Run) -> StepLayout:
    """Return the step file layout of a run's config and layer sizes."""
    config = run.config
    if config.variant == "dropconnect":
        scope, rows = "weights", 0
    elif config.mask_scope == "per-example":
        scope, rows = "per-example", config.batch_size
    else:
        scope, rows = "per-step", 1
    return StepLayout(tuple(run.trainer.layer_sizes), scope, rows)
