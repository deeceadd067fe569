"""Rebuild the runs of a state folder when the server starts.

Each run's trainer starts from its last checkpoint at or before the last
whole record of its step file, then re-runs the recorded steps after it,
checking each against its record. So a run comes back at its last recorded
step, and a crash loses only the steps that were still queued for the
writer. A run that was running comes back as interrupted.

NOTE: start-up loads every stored run's data set and re-runs up to
DROPVIZ_CHECKPOINT_STEPS steps per run, so it grows with the stored runs:
a run on all of MNIST keeps about 190 MB of images in memory.
"""

from __future__ import annotations

import logging
import time

from dropviz.runs.manager import RunManager, step_layout
from dropviz.runs.run import Run
from dropviz.runs.states import RunStatus
from dropviz.storage.datasets import load_stored_dataset
from dropviz.storage.replay import ReplayError, nearest_checkpoint, roll_forward
from dropviz.storage.stepfile import StepFile, StepFileError
from dropviz.storage.store import RunStore, StoredRun
from dropviz.training.config import TrainConfig
from dropviz.training.errors import DatasetError
from dropviz.training.records import EpochMetrics
from dropviz.training.trainer import Trainer

logger = logging.getLogger(__name__)


def restore_runs(manager: RunManager, store: RunStore) -> int:
    """Register every stored run with `manager`; return how many were restored.

    A run whose config, data or files cannot be read is logged and left on
    disk, so a restart after fixing the cause (say, a moved IDX folder) finds
    it again.
    """
    started = time.monotonic()
    restored = 0
    for stored in store.list_runs():
        try:
            run = restore_run(manager, store, stored)
        except (DatasetError, StepFileError, OSError, ValueError) as exc:
            logger.error(
                "run not restored, its files stay on disk: run_id=%s error=%s",
                stored.id,
                exc,
            )
            continue
        manager.add(run)
        restored += 1
    logger.info(
        "runs restored: count=%d state_dir=%s seconds=%.2f",
        restored,
        store.state_dir,
        time.monotonic() - started,
    )
    return restored


def restore_run(manager: RunManager, store: RunStore, stored: StoredRun) -> Run:
    """Rebuild one stored run at its last recorded step."""
    config = TrainConfig.from_dict(stored.config)
    dataset = load_stored_dataset(config, store.dataset_path(stored.id))
    run = Run(
        stored.id, config, stored.max_steps_per_second, manager.max_merge_steps, dataset
    )
    step_file = store.open_step_file(stored.id)
    epochs = {m.epoch: m for m in stored.epochs}
    recorded = min(step_file.step_count, run.trainer.total_steps)
    base = _roll_to_record(run.trainer, store, stored, step_file, recorded, epochs)
    step_count = run.trainer.step_count
    if step_count != recorded:
        logger.warning(
            "run restored before its last record: run_id=%s step=%d recorded=%d",
            stored.id,
            step_count,
            recorded,
        )

    # Drop what lies past the restored step, so new steps append after it.
    step_file.truncate(step_count)
    store.delete_checkpoints_after(stored.id, step_count)
    store.delete_epochs_after(stored.id, step_count)
    kept_epochs = sorted(
        (m for m in epochs.values() if m.step <= step_count), key=lambda m: m.epoch
    )

    status = _restored_status(stored.status, step_count)
    latest: tuple[float | None, float | None] = (None, None)
    if step_count > 0:
        last = step_file.read(step_count - 1)
        latest = (last.loss, last.batch_accuracy)
    run.restore(
        status,
        stored.created_at,
        kept_epochs,
        stored.diverged_step,
        stored.error,
        latest,
    )
    layout = step_layout(run)
    run.recorder = manager.recorder_for(stored.id, layout, base)
    store.update_run(stored.id, status=status.value, step=step_count)
    logger.info(
        "run restored: run_id=%s status=%s step=%d checkpoint_step=%d",
        stored.id,
        status.value,
        step_count,
        base,
    )
    return run


def _roll_to_record(
    trainer: Trainer,
    store: RunStore,
    stored: StoredRun,
    step_file: StepFile,
    recorded: int,
    epochs: dict[int, EpochMetrics],
) -> int:
    """Move the trainer to step `recorded`, or to the last step that re-runs
    as recorded; return the checkpoint step it started from."""
    base = nearest_checkpoint(stored.checkpoint_steps, recorded)
    if base > 0:
        trainer.load_state(store.load_checkpoint(stored.id, base))

    def evaluate_missing(trained: Trainer) -> None:
        # The epoch's metrics may have been queued but not written.
        if trained.epoch - 1 not in epochs:
            metrics = trained.evaluate()
            epochs[metrics.epoch] = metrics
            store.insert_epoch(stored.id, metrics)

    try:
        roll_forward(trainer, step_file, recorded, evaluate_missing)
    except ReplayError as exc:
        bad_step = trainer.step_count - 1
        logger.error(
            "step record does not re-run, cutting the run there: run_id=%s "
            "step=%d error=%s",
            stored.id,
            bad_step,
            exc,
        )
        step_file.truncate(bad_step)
        if base > bad_step:
            raise ValueError(f"checkpoint {base} lies past step {bad_step}") from None
        fresh = Trainer(trainer.config, trainer.dataset)
        if base > 0:
            fresh.load_state(store.load_checkpoint(stored.id, base))
        roll_forward(fresh, step_file, bad_step, evaluate_missing)
        trainer.load_state(fresh.state_dict())
    return base


def _restored_status(stored_status: str, step_count: int) -> RunStatus:
    status = RunStatus(stored_status)
    if status == RunStatus.RUNNING:
        return RunStatus.INTERRUPTED
    if status == RunStatus.CREATED and step_count > 0:
        # A single step was recorded, but not yet the paused state after it.
        return RunStatus.PAUSED
    return status
