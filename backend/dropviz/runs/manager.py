"""The registry of runs in this server process, with its limits."""

from __future__ import annotations

import logging
import threading
import uuid

from dropviz.runs.run import Run, RunStatus
from dropviz.streaming.hub import CLOSE_GOING_AWAY, CLOSE_NORMAL
from dropviz.training.config import TrainConfig
from dropviz.training.data import Dataset

logger = logging.getLogger(__name__)


class RunNotFoundError(KeyError):
    """No run has the requested id."""


class RunLimitError(Exception):
    """Starting one more run would pass a configured limit."""


class RunManager:
    """Creates, finds and deletes runs; enforces the running-run limit."""

    def __init__(self, max_running_runs: int, max_merge_steps: int) -> None:
        self.max_running_runs = max_running_runs
        self.max_merge_steps = max_merge_steps
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def create(
        self,
        config: TrainConfig,
        max_steps_per_second: float | None = None,
        dataset: Dataset | None = None,
    ) -> Run:
        """Create a run; `dataset`, for benchmarks, replaces `config.dataset`."""
        run = Run(
            uuid.uuid4().hex[:12],
            config,
            max_steps_per_second,
            self.max_merge_steps,
            dataset=dataset,
        )
        with self._lock:
            self._runs[run.id] = run
        logger.info(
            "run created: run_id=%s dataset=%s layer_sizes=%s",
            run.id,
            run.trainer.dataset.name,
            run.trainer.layer_sizes,
        )
        return run

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
        run.hub.close_all(CLOSE_NORMAL, "run deleted")
        logger.info("run deleted: run_id=%s", run_id)

    def stream_count(self) -> int:
        """Return the number of open streams over all runs."""
        return sum(run.hub.client_count for run in self.list())

    def shutdown(self) -> None:
        """Pause every running run and close every stream, for server shutdown.

        Streams first send what is pending, the runs' "paused" status included.
        """
        for run in self.list():
            run.halt()
            run.hub.close_all(CLOSE_GOING_AWAY, "server shutting down")
