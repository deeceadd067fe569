"""One run: a trainer, its state machine, its worker thread and its stream hub.

States: created -> running <-> paused, then finished, stopped or diverged,
which are final. A run that was training when the server stopped or crashed
comes back as interrupted, which resumes like paused. `step_once` trains
exactly one mini-batch from created, paused or interrupted. Control calls
block until the worker has settled, so call them from a worker thread (the
API uses a thread pool), never from the event loop. With a recorder, every
step, epoch, state change and checkpoint is also queued for storage.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Set
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dropviz.runs.evaluations import EvaluationJob, EvaluationRequest, start_job
from dropviz.runs.handoff import HandoffLock
from dropviz.runs.states import (
    CHECKPOINT_STATES,
    FINAL_STATES,
    RESUMABLE_STATES,
    RunStateError,
    RunStatus,
    epoch_event,
    epoch_fields,
    finite_or_none,
)
from dropviz.storage.archive import weights_npz
from dropviz.storage.datasets import dataset_to_npz
from dropviz.storage.recorder import RunRecorder
from dropviz.streaming.frames import encode_snapshot
from dropviz.streaming.hub import ClientQueue, StreamHub
from dropviz.streaming.options import ClientOptions
from dropviz.training.config import TrainConfig
from dropviz.training.data import Dataset
from dropviz.training.ensemble import Network, check_enumerable
from dropviz.training.records import EpochMetrics, StepRecord
from dropviz.training.state import TrainerState
from dropviz.training.trainer import Trainer

logger = logging.getLogger(__name__)

MAX_KEPT_EVALUATIONS = 20  # per run; starting one more drops (and cancels) the oldest


class Run:
    """A training run and everything needed to control and watch it."""

    def __init__(
        self,
        run_id: str,
        config: TrainConfig,
        max_steps_per_second: float | None = None,
        max_merge_steps: int = 20_000,
        dataset: Dataset | None = None,
        recorder: RunRecorder | None = None,
    ) -> None:
        """Create a run; `dataset` replaces the one `config.dataset` names.

        Only the benchmark passes a `dataset`: the API offers named data sets.
        """
        self.id = run_id
        self.config = config
        self.trainer = Trainer(config, dataset)
        stream_scope = (
            "weights" if config.variant == "dropconnect" else config.mask_scope
        )
        # Guards the trainer and the fields below. The worker takes it for each step.
        self._state = HandoffLock()
        self.hub = StreamHub(
            run_id,
            stream_scope,
            max_merge_steps,
            layer_count=len(self.trainer.layer_sizes) - 1,
            parameters=self._live_parameters,
            parameters_lock=self._state.lock,
        )
        self.created_at = datetime.now(UTC)
        self.max_steps_per_second = max_steps_per_second
        self.status = RunStatus.CREATED
        self.epochs: list[EpochMetrics] = []
        self.last_step: StepRecord | None = None
        # Loss and accuracy of the last step before a restore, until a new step.
        self.restored_latest: tuple[float | None, float | None] = (None, None)
        self.recorder = recorder
        self.diverged_step: int | None = None
        self.error: str | None = None
        self.evaluations: dict[str, EvaluationJob] = {}  # oldest first

        # Threads other than the worker count themselves here while they wait
        # for the state lock, and the worker lets them in between two steps.
        self._control_lock = threading.Lock()  # serializes start, pause, step and stop
        self._halt = threading.Event()
        self._worker: threading.Thread | None = None

    # control -------------------------------------------------------------

    def start(self) -> None:
        with self._control_lock, self._state.shared():
            self._require(RESUMABLE_STATES, "start")
            self.error = None
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
        with self._control_lock, self._state.shared():
            self._require(RESUMABLE_STATES, "step")
            self._advance()
            if self.status not in FINAL_STATES:
                self._set_status(RunStatus.PAUSED)

    def stop(self) -> None:
        self._halt_worker(
            RESUMABLE_STATES | {RunStatus.RUNNING}, "stop", RunStatus.STOPPED
        )

    def halt(self) -> None:
        """Pause a running run without raising; used before deleting it."""
        try:
            self.pause()
        except RunStateError:
            pass

    def suspend(self) -> None:
        """Halt a running run as interrupted, with a checkpoint; for shutdown."""
        try:
            self._halt_worker({RunStatus.RUNNING}, "suspend", RunStatus.INTERRUPTED)
        except RunStateError:
            pass

    def set_speed(self, max_steps_per_second: float | None) -> None:
        self.max_steps_per_second = max_steps_per_second
        if self.recorder is not None:
            self.recorder.record_state(max_steps_per_second=max_steps_per_second)
        # other viewers' speed controls follow
        self.hub.publish_event(
            {"type": "speed", "max_steps_per_second": max_steps_per_second}
        )

    def restore(
        self,
        status: RunStatus,
        created_at: datetime,
        epochs: list[EpochMetrics],
        diverged_step: int | None,
        error: str | None,
        latest: tuple[float | None, float | None],
    ) -> None:
        """Set the fields of a run rebuilt from storage; its trainer is already set."""
        with self._state.lock:
            self.status = status
            self.created_at = created_at
            self.epochs = list(epochs)
            self.diverged_step = diverged_step
            self.error = error
            self.restored_latest = latest

    # watching --------------------------------------------------------------

    def subscribe(
        self, loop: asyncio.AbstractEventLoop, options: ClientOptions
    ) -> tuple[bytes, ClientQueue]:
        """Register a client and return the snapshot its first frame continues from.

        Both happen under the state lock, between two steps, so the client's
        first steps frame starts exactly at the snapshot's `next_step`.
        """
        with self._state.shared():
            snapshot = self._encode_snapshot()
            client = self.hub.add_client(loop, options, self.trainer.step_count)
            return snapshot, client

    def resnapshot(self, client: ClientQueue) -> bytes:
        """Return a fresh snapshot for `client` and restart its steps from it."""
        with self._state.shared():
            snapshot = self._encode_snapshot()
            self.hub.restart_client(client, self.trainer.step_count)
            return snapshot

    def _live_parameters(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Return the trainer's own weight and bias arrays; call with the state lock."""
        params = self.trainer.params
        return params.weights, params.biases

    def _encode_snapshot(self) -> bytes:
        params = self.trainer.params
        return encode_snapshot(
            self.trainer.step_count, self.stream_meta(), params.weights, params.biases
        )

    def network_snapshot(self) -> tuple[Network, int, list[np.ndarray] | None]:
        """Copy the weights for inference without holding up training.

        Returns the network, the steps completed, and the masks of the last
        step when it trained one per-step unit sub-network (else None).
        """
        with self._state.shared():
            params = self.trainer.params.copy()
            step = self.trainer.step_count
            last = self.last_step
        config = self.config
        network = Network(
            params,
            config.activation,
            list(self.trainer.keep_probs),
            config.scaling,
            config.variant,
        )
        last_masks = None
        if last is not None and last.masks and last.batch_rows == 1:
            last_masks = last.masks
        return network, step, last_masks

    def start_evaluation(self, request: EvaluationRequest) -> EvaluationJob:
        """Start ensemble inference on a copy of the current weights.

        Raises ValueError when the request does not fit this run (exact
        enumeration of a DropConnect run or of too many units).
        """
        network, step, _ = self.network_snapshot()
        if request.rule == "exact":
            check_enumerable(network, request.layers)
        dataset = self.trainer.dataset
        x, labels = (
            (dataset.x_test, dataset.y_test)
            if request.split == "test"
            else (dataset.x_train, dataset.y_train)
        )
        job = EvaluationJob(self.id, step, request)
        with self._state.shared():
            self.evaluations[job.id] = job
            while len(self.evaluations) > MAX_KEPT_EVALUATIONS:
                oldest = next(iter(self.evaluations))
                self.evaluations.pop(oldest).cancel()
        logger.info(
            "evaluation started: run_id=%s job_id=%s rule=%s step=%d",
            self.id,
            job.id,
            request.rule,
            step,
        )
        start_job(job, network, x, labels, self._publish_evaluation)
        return job

    def _publish_evaluation(self, job: EvaluationJob) -> None:
        self.hub.publish_event(
            {
                "type": "evaluation",
                "id": job.id,
                "rule": job.request.rule,
                "status": job.status.value,
                "progress": job.progress,
            }
        )

    def archive_state(self) -> tuple[TrainerState, dict[str, Any], list[EpochMetrics]]:
        """Return the trainer state, summary and epochs, all from one moment."""
        with self._state.shared():
            return self.trainer.state_dict(), self.summary(), list(self.epochs)

    def weights_npz(self) -> tuple[int, bytes]:
        """Return the step count and the current weights as `.npz` bytes."""
        with self._state.shared():
            params = self.trainer.params.copy()
            step = self.trainer.step_count
        return step, weights_npz(self.trainer.layer_sizes, params)

    def dataset_npz(self) -> bytes:
        """Return the run's train and test splits as `.npz` bytes."""
        # Nothing modifies a data set after loading, so no lock is needed.
        return dataset_to_npz(self.trainer.dataset)

    def summary(self) -> dict[str, Any]:
        """Return the run's state as plain JSON-safe Python values."""
        with self._state.shared():
            trainer = self.trainer
            last_epoch = self.epochs[-1] if self.epochs else None
            final_accuracy = None
            if self.status == RunStatus.FINISHED and last_epoch is not None:
                final_accuracy = finite_or_none(last_epoch.test_accuracy)
            batch_loss, batch_accuracy = self.restored_latest
            if self.last_step is not None:
                batch_loss = self.last_step.loss
                batch_accuracy = self.last_step.batch_accuracy
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
                    "batch_loss": finite_or_none(batch_loss),
                    "batch_accuracy": finite_or_none(batch_accuracy),
                    **epoch_fields(last_epoch),
                },
                "final_test_accuracy": final_accuracy,
                "diverged_step": self.diverged_step,
                "error": self.error,
                "created_at": self.created_at.isoformat(),
                "stream_clients": self.hub.client_count,
            }

    def epoch_history(self) -> list[dict[str, Any]]:
        with self._state.shared():
            return [epoch_event(m) for m in self.epochs]

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

    def _require(self, allowed: Set[RunStatus], action: str) -> None:
        if self.status not in allowed:
            names = ", ".join(sorted(s.value for s in allowed))
            raise RunStateError(
                f"Cannot {action} run {self.id}: it is {self.status.value}; "
                f"{action} needs a run that is {names}."
            )

    def _set_status(self, status: RunStatus) -> None:
        previous, self.status = self.status, status
        if self.recorder is not None:
            # A single step leaves the run paused without a checkpoint: the
            # step file has the step, and a restore re-runs it.
            checkpoint = status in CHECKPOINT_STATES and not (
                status == RunStatus.PAUSED and previous != RunStatus.RUNNING
            )
            self._record_status(self.recorder, checkpoint)
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
        self, allowed: Set[RunStatus], action: str, target: RunStatus
    ) -> None:
        """Wait for the worker to finish its step, then move to `target`.

        A run that reached a final state while the worker wound down keeps it.
        """
        with self._control_lock:
            with self._state.shared():
                self._require(allowed, action)
            self._join_worker()
            with self._state.shared():
                if self.status not in FINAL_STATES:
                    self._set_status(target)
                    logger.info(
                        "run %s: run_id=%s step=%d",
                        target.value,
                        self.id,
                        self.trainer.step_count,
                    )
            if self.recorder is not None:
                # The caller learns of the new state only once it is on disk.
                self.recorder.sync()

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
        if self.recorder is not None:
            self.recorder.record_step(record)

        if not math.isfinite(record.loss):
            self.diverged_step = record.step
            self._set_status(RunStatus.DIVERGED)
            logger.info("run diverged: run_id=%s step=%d", self.id, record.step)
            return None
        if (
            not record.epoch_end
            and self.recorder is not None
            and self.recorder.checkpoint_due(self.trainer.step_count)
        ):
            self._record_status(self.recorder, checkpoint=False)
        return record

    def _end_epoch(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)
        self.hub.publish_event(epoch_event(metrics))
        if self.recorder is not None:
            self.recorder.record_epoch(metrics)
        if self.trainer.done:
            self._set_status(RunStatus.FINISHED)
            logger.info(
                "run finished: run_id=%s steps=%d test_accuracy=%.4f",
                self.id,
                self.trainer.step_count,
                self.epochs[-1].test_accuracy if self.epochs else float("nan"),
            )
        elif self.recorder is not None and self.recorder.checkpoint_due(
            self.trainer.step_count
        ):
            self._record_status(self.recorder, checkpoint=False)

    def _train(self) -> None:
        next_time = time.monotonic()
        try:
            while not self._halt.is_set():
                # Outside the state lock: subscribing and reading go on meanwhile.
                if not self.hub.wait_for_acks(self.trainer.step_count, self._halt):
                    return
                with self._state.worker():
                    if self.status != RunStatus.RUNNING:
                        return
                    record = self._step()
                    if record is None:
                        return
                    if self.recorder is not None and self.recorder.disk_full():
                        self._pause_for_disk(self.recorder)
                        return
                if record.epoch_end:
                    # While the run is running only this thread changes the
                    # weights, so the evaluation (which takes about as long as
                    # a few hundred steps) runs without the lock that reads wait on.
                    metrics = self.trainer.evaluate()
                    with self._state.lock:
                        self._end_epoch(metrics)
                        if self.status != RunStatus.RUNNING:
                            return
                rate = self.max_steps_per_second
                if rate:
                    next_time = max(next_time + 1.0 / rate, time.monotonic() - 1.0)
                    self._halt.wait(max(0.0, next_time - time.monotonic()))
        except Exception as exc:
            logger.exception("training failed: run_id=%s", self.id)
            with self._state.lock:
                self.error = f"{type(exc).__name__}: {exc}"
                self._set_status(RunStatus.STOPPED)

    def _pause_for_disk(self, recorder: RunRecorder) -> None:
        self.error = (
            f"Paused at step {self.trainer.step_count}: the state folder uses "
            f"{recorder.store.usage_bytes:,} bytes and max_state_bytes is "
            f"{recorder.max_state_bytes:,}. Delete runs or raise "
            "DROPVIZ_MAX_STATE_BYTES, then start the run again."
        )
        self._set_status(RunStatus.PAUSED)
        logger.warning(
            "run paused, disk limit reached: run_id=%s step=%d usage_bytes=%d "
            "max_state_bytes=%d",
            self.id,
            self.trainer.step_count,
            recorder.store.usage_bytes,
            recorder.max_state_bytes,
        )

    def _record_status(self, recorder: RunRecorder, checkpoint: bool) -> None:
        """Queue the run's index row, after a checkpoint if asked for or due."""
        step_count = self.trainer.step_count
        if checkpoint or recorder.checkpoint_due(step_count):
            recorder.checkpoint(self.trainer.state_dict())
        latest = self.last_step
        recorder.record_state(
            status=self.status.value,
            step=step_count,
            diverged_step=self.diverged_step,
            error=self.error,
            latest_loss=finite_or_none(latest.loss) if latest else None,
            latest_accuracy=finite_or_none(latest.batch_accuracy) if latest else None,
        )
