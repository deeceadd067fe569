"""One run: a trainer, its state machine, its worker thread and its stream hub.

States: created -> running <-> paused, then finished, stopped or diverged,
which are final. `step_once` trains exactly one mini-batch from created or
paused. Control calls block until the worker has settled, so call them from
a worker thread (the API uses a thread pool), never from the event loop.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np

from dropviz.streaming.frames import encode_snapshot
from dropviz.streaming.hub import ClientQueue, StreamHub
from dropviz.streaming.options import ClientOptions
from dropviz.training.config import TrainConfig
from dropviz.training.data import Dataset
from dropviz.training.records import EpochMetrics, StepRecord
from dropviz.training.trainer import Trainer

logger = logging.getLogger(__name__)

LOCK_HANDOFF_TIMEOUT = 1.0  # seconds the worker waits for others to take the lock


class RunStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"
    DIVERGED = "diverged"


FINAL_STATES = frozenset({RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.DIVERGED})


class RunStateError(Exception):
    """A control call that the run's current state does not allow."""


def finite_or_none(value: float | None) -> float | None:
    """Map NaN and infinities to None, so that JSON never carries them."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class Run:
    """A training run and everything needed to control and watch it."""

    def __init__(
        self,
        run_id: str,
        config: TrainConfig,
        max_steps_per_second: float | None = None,
        max_merge_steps: int = 20_000,
        dataset: Dataset | None = None,
    ) -> None:
        """Create a run; `dataset` replaces the one `config.dataset` names.

        Only the benchmark passes a `dataset`: the API offers named data sets.
        """
        self.id = run_id
        self.config = config
        self.trainer = Trainer(config, dataset)
        self.hub = StreamHub(
            run_id,
            config.mask_scope,
            max_merge_steps,
            layer_count=len(self.trainer.layer_sizes) - 1,
        )
        self.created_at = datetime.now(UTC)
        self.max_steps_per_second = max_steps_per_second
        self.status = RunStatus.CREATED
        self.epochs: list[EpochMetrics] = []
        self.last_step: StepRecord | None = None
        self.diverged_step: int | None = None
        self.error: str | None = None

        self._state_lock = threading.RLock()  # guards the trainer and the fields above
        # Threads other than the worker count themselves here while they wait
        # for the state lock, and the worker lets them in between two steps.
        self._lock_waiters = 0
        self._lock_waiters_guard = threading.Lock()
        self._no_lock_waiters = threading.Event()
        self._no_lock_waiters.set()
        self._control_lock = threading.Lock()  # serializes start, pause, step and stop
        self._halt = threading.Event()
        self._worker: threading.Thread | None = None

    # control -------------------------------------------------------------

    def start(self) -> None:
        with self._control_lock, self._locked():
            self._require({RunStatus.CREATED, RunStatus.PAUSED}, "start")
            self._halt.clear()
            self._set_status(RunStatus.RUNNING)
            self._worker = threading.Thread(
                target=self._train, name=f"run-{self.id}", daemon=True
            )
            self._worker.start()
        logger.info("run started: run_id=%s step=%d", self.id, self.trainer.step_count)

    def pause(self) -> None:
        self._halt_worker({RunStatus.RUNNING}, "pause", RunStatus.PAUSED)

    def step_once(self) -> None:
        """Train exactly one mini-batch, leaving the run paused (or final).

        Step-locked stream clients do not hold this step back: it is a manual
        control, and they receive it like any other.
        """
        with self._control_lock, self._locked():
            self._require({RunStatus.CREATED, RunStatus.PAUSED}, "step")
            self._advance()
            if self.status not in FINAL_STATES:
                self._set_status(RunStatus.PAUSED)

    def stop(self) -> None:
        self._halt_worker(
            {RunStatus.CREATED, RunStatus.RUNNING, RunStatus.PAUSED},
            "stop",
            RunStatus.STOPPED,
        )

    def halt(self) -> None:
        """Pause a running run without raising; used at server shutdown."""
        try:
            self.pause()
        except RunStateError:
            pass

    def set_speed(self, max_steps_per_second: float | None) -> None:
        self.max_steps_per_second = max_steps_per_second

    # watching --------------------------------------------------------------

    def subscribe(
        self, loop: asyncio.AbstractEventLoop, options: ClientOptions
    ) -> tuple[bytes, ClientQueue]:
        """Register a client and return the snapshot its first frame continues from.

        Both happen under the state lock, between two steps, so the client's
        first steps frame starts exactly at the snapshot's `next_step`.
        """
        with self._locked():
            snapshot = self._encode_snapshot()
            client = self.hub.add_client(loop, options, self.trainer.step_count)
            return snapshot, client

    def resnapshot(self, client: ClientQueue) -> bytes:
        """Return a fresh snapshot for `client` and restart its steps from it."""
        with self._locked():
            snapshot = self._encode_snapshot()
            self.hub.restart_client(client, self.trainer.step_count)
            return snapshot

    def _encode_snapshot(self) -> bytes:
        params = self.trainer.params
        return encode_snapshot(
            self.trainer.step_count, self.stream_meta(), params.weights, params.biases
        )

    def weights_npz(self) -> tuple[int, bytes]:
        """Return the step count and the current weights as `.npz` bytes."""
        with self._locked():
            params = self.trainer.params.copy()
            step = self.trainer.step_count
        arrays: dict[str, np.ndarray] = {
            "layer_sizes": np.array(self.trainer.layer_sizes)
        }
        for layer, (weight, bias) in enumerate(
            zip(params.weights, params.biases, strict=True)
        ):
            arrays[f"W{layer}"] = weight
            arrays[f"b{layer}"] = bias
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        return step, buffer.getvalue()

    def summary(self) -> dict[str, Any]:
        """Return the run's state as plain JSON-safe Python values."""
        with self._locked():
            trainer = self.trainer
            last_epoch = self.epochs[-1] if self.epochs else None
            final_accuracy = None
            if self.status == RunStatus.FINISHED and last_epoch is not None:
                final_accuracy = finite_or_none(last_epoch.test_accuracy)
            return {
                "id": self.id,
                "status": self.status.value,
                "config": self.config.to_dict(),
                "max_steps_per_second": self.max_steps_per_second,
                "layer_sizes": list(trainer.layer_sizes),
                "input_shape": list(trainer.dataset.input_shape)
                if trainer.dataset.input_shape
                else None,
                "step": trainer.step_count,
                "epoch": min(trainer.epoch, self.config.epochs - 1),
                "steps_per_epoch": trainer.steps_per_epoch,
                "total_steps": trainer.total_steps,
                "train_size": int(len(trainer.dataset.y_train)),
                "test_size": int(len(trainer.dataset.y_test)),
                "latest": {
                    "batch_loss": finite_or_none(self.last_step.loss)
                    if self.last_step
                    else None,
                    "batch_accuracy": finite_or_none(self.last_step.batch_accuracy)
                    if self.last_step
                    else None,
                    **_epoch_fields(last_epoch),
                },
                "final_test_accuracy": final_accuracy,
                "diverged_step": self.diverged_step,
                "error": self.error,
                "created_at": self.created_at.isoformat(),
                "stream_clients": self.hub.client_count,
            }

    def epoch_history(self) -> list[dict[str, Any]]:
        with self._locked():
            return [_epoch_event(m) for m in self.epochs]

    def stream_meta(self) -> dict[str, Any]:
        summary = self.summary()
        return {
            "run_id": self.id,
            "layer_sizes": summary["layer_sizes"],
            "status": summary["status"],
            "epoch": summary["epoch"],
            "config": summary["config"],
            "input_shape": summary["input_shape"],
            "class_names": list(self.trainer.dataset.class_names),
        }

    # internals ---------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the state lock; for every thread but the worker.

        A lock is not fair: the worker would take it back right after each
        step, and a REST read measured waiting for up to 300 ms. So a waiting
        thread registers, and the worker steps aside until it got the lock.
        """
        with self._lock_waiters_guard:
            self._lock_waiters += 1
            self._no_lock_waiters.clear()
        try:
            self._state_lock.acquire()
        finally:
            with self._lock_waiters_guard:
                self._lock_waiters -= 1
                if self._lock_waiters == 0:
                    self._no_lock_waiters.set()
        try:
            yield
        finally:
            self._state_lock.release()

    def _require(self, allowed: set[RunStatus], action: str) -> None:
        if self.status not in allowed:
            names = ", ".join(sorted(s.value for s in allowed))
            raise RunStateError(
                f"Cannot {action} run {self.id}: it is {self.status.value}; "
                f"{action} needs a run that is {names}."
            )

    def _set_status(self, status: RunStatus) -> None:
        self.status = status
        self.hub.publish_event(
            {
                "type": "status",
                "status": status.value,
                "step": self.trainer.step_count,
                "epoch": min(self.trainer.epoch, self.config.epochs - 1),
                "diverged_step": self.diverged_step,
            }
        )

    def _halt_worker(
        self, allowed: set[RunStatus], action: str, target: RunStatus
    ) -> None:
        """Wait for the worker to finish its step, then move to `target`.

        A run that reached a final state while the worker wound down keeps it.
        """
        with self._control_lock:
            with self._locked():
                self._require(allowed, action)
            self._join_worker()
            with self._locked():
                if self.status not in FINAL_STATES:
                    self._set_status(target)
                    logger.info(
                        "run %s: run_id=%s step=%d",
                        target.value,
                        self.id,
                        self.trainer.step_count,
                    )

    def _join_worker(self) -> None:
        self._halt.set()
        self.hub.release_waiters()  # a worker may wait for step-locked clients
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()
        self._worker = None

    def _advance(self) -> None:
        """Train one step, publish it, and evaluate at the end of an epoch."""
        record = self._step()
        if record is not None and record.epoch_end:
            self._end_epoch(self.trainer.evaluate())

    def _step(self) -> StepRecord | None:
        """Train and publish one step; return None if the loss diverged."""
        record = self.trainer.step()
        self.last_step = record
        self.hub.publish_step(record)

        if not math.isfinite(record.loss):
            self.diverged_step = record.step
            self._set_status(RunStatus.DIVERGED)
            logger.info("run diverged: run_id=%s step=%d", self.id, record.step)
            return None
        return record

    def _end_epoch(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)
        self.hub.publish_event(_epoch_event(metrics))
        if self.trainer.done:
            self._set_status(RunStatus.FINISHED)
            logger.info(
                "run finished: run_id=%s steps=%d test_accuracy=%.4f",
                self.id,
                self.trainer.step_count,
                self.epochs[-1].test_accuracy if self.epochs else float("nan"),
            )

    def _train(self) -> None:
        next_time = time.monotonic()
        try:
            while not self._halt.is_set():
                # Outside the state lock: subscribing and reading go on meanwhile.
                if not self.hub.wait_for_acks(self.trainer.step_count, self._halt):
                    return
                self._no_lock_waiters.wait(LOCK_HANDOFF_TIMEOUT)
                with self._state_lock:
                    if self.status != RunStatus.RUNNING:
                        return
                    record = self._step()
                    if record is None:
                        return
                if record.epoch_end:
                    # While the run is running only this thread changes the
                    # weights, so the evaluation (which takes about as long as
                    # a few hundred steps) runs without the lock that reads wait on.
                    metrics = self.trainer.evaluate()
                    with self._state_lock:
                        self._end_epoch(metrics)
                        if self.status != RunStatus.RUNNING:
                            return
                rate = self.max_steps_per_second
                if rate:
                    next_time = max(next_time + 1.0 / rate, time.monotonic() - 1.0)
                    self._halt.wait(max(0.0, next_time - time.monotonic()))
        except Exception as exc:
            logger.exception("training failed: run_id=%s", self.id)
            with self._state_lock:
                self.error = f"{type(exc).__name__}: {exc}"
                self._set_status(RunStatus.STOPPED)


def _epoch_fields(metrics: EpochMetrics | None) -> dict[str, float | None]:
    names = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    if metrics is None:
        return dict.fromkeys(names)
    return {name: finite_or_none(getattr(metrics, name)) for name in names}


def _epoch_event(metrics: EpochMetrics) -> dict[str, Any]:
    return {
        "type": "epoch",
        "epoch": metrics.epoch,
        "step": metrics.step,
        **_epoch_fields(metrics),
    }
