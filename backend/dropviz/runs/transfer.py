"""Export a stored run as an archive, and import an archive as a new run.

An export is consistent: the trainer state, the step records and the
checkpoints all stop at the same step, even while the run trains. An
import writes the archive's files into a new run folder, then restores the
run the way a restart does, re-running the steps after the last checkpoint
against their records. So an archive whose steps do not re-run exactly is
rejected, and an imported run replays step for step like the original.
"""

from __future__ import annotations

import io
import logging
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dropviz.runs.manager import RunManager, step_layout
from dropviz.runs.restore import restore_run
from dropviz.runs.run import Run
from dropviz.runs.states import RunStatus
from dropviz.storage.archive import ArchiveError, RunArchive, write_archive
from dropviz.storage.archive import weights_npz as encode_weights
from dropviz.storage.recorder import RunRecorder
from dropviz.storage.replay import ReplayError
from dropviz.storage.stepfile import StepFileError
from dropviz.training.config import TrainConfig, is_csv_dataset
from dropviz.training.data import Dataset
from dropviz.training.errors import DatasetError
from dropviz.training.mlp import Params
from dropviz.training.records import EpochMetrics

logger = logging.getLogger(__name__)

METRIC_NAMES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")

# The state an imported run starts in, by the state it was exported in.
IMPORTED_STATUS = {
    "created": RunStatus.CREATED,
    "running": RunStatus.PAUSED,
    "paused": RunStatus.PAUSED,
    "interrupted": RunStatus.PAUSED,
    "finished": RunStatus.FINISHED,
    "stopped": RunStatus.STOPPED,
    "diverged": RunStatus.DIVERGED,
}


def export_run(run: Run, recorder: RunRecorder) -> bytes:
    """Return the zip archive of a stored run at its current step."""
    state, summary, epochs = run.archive_state()
    step_count = state.step_count
    recorder.sync()
    store = recorder.store
    step_file = store.step_file(run.id)
    with step_file.path.open("rb") as handle:
        step_bytes = handle.read(
            step_file.header_bytes + step_count * step_file.layout.record_bytes
        )

    checkpoints = {
        step: store.checkpoint_path(run.id, step).read_bytes()
        for step in store.checkpoint_steps(run.id)
        if step <= step_count
    }
    if step_count > 0 and step_count not in checkpoints:
        # The archived step gets its own checkpoint, so an import re-runs nothing.
        buffer = io.BytesIO()
        np.savez(buffer, **state.to_arrays())  # type: ignore[arg-type]
        checkpoints[step_count] = buffer.getvalue()

    status = summary["status"]
    meta = {
        "run": {
            "id": run.id,
            "created_at": summary["created_at"],
            "status": "paused" if status == RunStatus.RUNNING else status,
            "step": step_count,
            "diverged_step": summary["diverged_step"],
            "error": summary["error"],
            "max_steps_per_second": summary["max_steps_per_second"],
            "layer_sizes": summary["layer_sizes"],
        },
        "config": run.config.to_dict(),
        "epochs": [_epoch_dict(m) for m in epochs],
    }
    dataset = run.dataset_npz() if is_csv_dataset(run.config.dataset) else None
    weights = encode_weights(
        run.trainer.layer_sizes, Params(state.weights, state.biases)
    )
    return write_archive(meta, epochs, step_bytes, checkpoints, weights, dataset)


def import_run(
    manager: RunManager,
    archive: RunArchive,
    config: TrainConfig,
    dataset: Dataset,
) -> Run:
    """Store an archive as a new run and restore it; raise ArchiveError if invalid.

    `config` and `dataset` are the archive's, checked and loaded by the caller.
    Raises RunLimitError when max_stored_runs or max_state_bytes is reached.
    """
    store = manager.store
    if store is None:
        raise ArchiveError("this server stores no runs, so it cannot import one")
    manager.check_room("import a run")
    run_meta = archive.meta.get("run")
    if not isinstance(run_meta, dict):
        raise ArchiveError("run.json has no 'run' object")

    run_id = uuid.uuid4().hex[:12]
    run = Run(run_id, config, None, manager.max_merge_steps, dataset)
    layout = step_layout(run)
    header = layout.header()
    records = archive.step_records[len(header) :]
    if not archive.step_records.startswith(header):
        raise ArchiveError(
            "steps.bin does not match the config: its header differs from that of "
            f"a {layout.mask_scope} run with layer sizes {list(layout.layer_sizes)}"
        )
    step_count, remainder = divmod(len(records), layout.record_bytes)
    if remainder or step_count > run.trainer.total_steps:
        raise ArchiveError(
            f"steps.bin contains {len(records)} bytes of records, not a whole number "
            f"of {layout.record_bytes}-byte records up to {run.trainer.total_steps}"
        )

    status = IMPORTED_STATUS.get(str(run_meta.get("status")))
    if status is None:
        raise ArchiveError(f"run.json has unknown status {run_meta.get('status')!r}")
    epochs = [_epoch_from_dict(e) for e in _list(archive.meta.get("epochs"))]
    speed = run_meta.get("max_steps_per_second")

    store.insert_run(
        run_id,
        datetime.now(UTC),
        config.to_dict(),
        status.value,
        float(speed) if isinstance(speed, int | float) and speed > 0 else None,
        layout,
        archive.dataset_npz if is_csv_dataset(config.dataset) else None,
    )
    try:
        store.replace_step_records(run_id, records)
        for step, payload in archive.checkpoints.items():
            if 0 < step <= step_count:
                store.add_checkpoint_file(run_id, step, payload)
        for metrics in epochs:
            store.insert_epoch(run_id, metrics)
        diverged = run_meta.get("diverged_step")
        store.update_run(
            run_id,
            step=step_count,
            diverged_step=diverged if isinstance(diverged, int) else None,
            error=_text(run_meta.get("error")),
        )
        restored = restore_run(manager, store, store.stored_run(run_id))
        if restored.trainer.step_count != step_count:
            raise ReplayError(
                f"only {restored.trainer.step_count} of {step_count} steps re-ran "
                "as recorded"
            )
    except (
        ValueError,
        TypeError,
        KeyError,
        OSError,
        DatasetError,
        StepFileError,
        ReplayError,
    ) as exc:
        store.delete_run(run_id)
        logger.info("run import rejected: error=%s", exc)
        raise ArchiveError(f"the archive's run cannot be restored: {exc}") from None

    manager.add(restored)
    logger.info(
        "run imported: run_id=%s source_run_id=%s steps=%d status=%s",
        run_id,
        run_meta.get("id"),
        step_count,
        status.value,
    )
    return restored


def _epoch_dict(metrics: EpochMetrics) -> dict[str, Any]:
    return {
        name: (None if isinstance(value, float) and not math.isfinite(value) else value)
        for name, value in vars(metrics).items()
    }


def _epoch_from_dict(values: object) -> EpochMetrics:
    if not isinstance(values, dict):
        raise ArchiveError(
            f"run.json has an epoch entry that is not an object: {values!r}"
        )
    try:
        return EpochMetrics(
            epoch=int(values["epoch"]),
            step=int(values["step"]),
            **{
                name: float("nan") if values[name] is None else float(values[name])
                for name in (
                    "train_loss",
                    "train_accuracy",
                    "test_loss",
                    "test_accuracy",
                )
            },
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchiveError(f"run.json has an invalid epoch entry: {exc}") from None


def _list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ArchiveError("run.json 'epochs' is not a list")
    return value


def _text(value: object) -> str | None:
    return value[:2000] if isinstance(value, str) else None
