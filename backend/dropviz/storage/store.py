"""The run store: the SQLite run index plus each run's folder of files.

Layout under the state folder:

    dropviz.sqlite3            run index (schema.py), WAL mode
    runs/<run_id>/steps.bin    every step's masks and metrics (stepfile.py)
    runs/<run_id>/checkpoints/<step>.npz   trainer states (training/state.py)
    runs/<run_id>/dataset.npz  an uploaded CSV's splits, which no file restores

Creating and deleting runs write synchronously from the calling thread.
Everything a training thread produces goes through the StorageWriter in
order, so the index never names a checkpoint that is not yet written.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from dropviz.storage.schema import open_database
from dropviz.storage.stepfile import StepFile, StepLayout, append_records
from dropviz.storage.writer import CallItem, StorageWriter
from dropviz.training.records import EpochMetrics
from dropviz.training.state import TrainerState

logger = logging.getLogger(__name__)

DATABASE_NAME = "dropviz.sqlite3"


@dataclass(frozen=True)
class StoredRun:
    """One run's row of the index, with its epochs and checkpoint steps."""

    id: str
    created_at: datetime
    config: dict[str, Any]
    status: str
    step: int
    diverged_step: int | None
    error: str | None
    max_steps_per_second: float | None
    latest_loss: float | None
    latest_accuracy: float | None
    epochs: list[EpochMetrics]
    checkpoint_steps: list[int]  # ascending


class RunStore:
    """Persists runs under one state folder; thread-safe."""

    def __init__(self, state_dir: Path, max_queue_items: int = 65_536) -> None:
        self.state_dir = state_dir
        self.runs_dir = state_dir / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self._db = open_database(state_dir / DATABASE_NAME, self.runs_dir)
        self._db_lock = threading.Lock()
        self._usage_lock = threading.Lock()
        self._usage_bytes = _folder_bytes(state_dir)
        self._step_files: dict[str, StepFile] = {}
        self.writer = StorageWriter(max_queue_items, self._append_steps)

    # paths and sizes -----------------------------------------------------------

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def step_file_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "steps.bin"

    def checkpoint_path(self, run_id: str, step: int) -> Path:
        return self.run_dir(run_id) / "checkpoints" / f"{step:012d}.npz"

    def dataset_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "dataset.npz"

    @property
    def usage_bytes(self) -> int:
        """Return the bytes of every file under the state folder, as tracked."""
        with self._usage_lock:
            return self._usage_bytes

    def _add_usage(self, size: int) -> None:
        with self._usage_lock:
            self._usage_bytes += size

    # run rows ------------------------------------------------------------------

    def insert_run(
        self,
        run_id: str,
        created_at: datetime,
        config: dict[str, Any],
        status: str,
        max_steps_per_second: float | None,
        layout: StepLayout,
        dataset_npz: bytes | None = None,
    ) -> StepFile:
        """Create the run's folder, empty step file and index row."""
        run_dir = self.run_dir(run_id)
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        step_file = StepFile.create(self.step_file_path(run_id), layout)
        self._step_files[run_id] = step_file
        self._add_usage(step_file.header_bytes)
        if dataset_npz is not None:
            self.dataset_path(run_id).write_bytes(dataset_npz)
            self._add_usage(len(dataset_npz))
        stamp = created_at.isoformat()
        with self._locked() as db:
            db.execute(
                "INSERT INTO runs (id, created_at, updated_at, config, status, step, "
                "max_steps_per_second) VALUES (?, ?, ?, ?, ?, 0, ?)",
                (
                    run_id,
                    stamp,
                    stamp,
                    json.dumps(config),
                    status,
                    max_steps_per_second,
                ),
            )
        return step_file

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run's row; unknown run ids are ignored."""
        names = ", ".join(f"{name} = ?" for name in fields)
        with self._locked() as db:
            db.execute(
                f"UPDATE runs SET {names}, updated_at = datetime('now') WHERE id = ?",
                (*fields.values(), run_id),
            )

    def insert_epoch(self, run_id: str, metrics: EpochMetrics) -> None:
        with self._locked() as db:
            db.execute(
                "INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    metrics.epoch,
                    metrics.step,
                    _real(metrics.train_loss),
                    _real(metrics.train_accuracy),
                    _real(metrics.test_loss),
                    _real(metrics.test_accuracy),
                ),
            )

    def delete_epochs_after(self, run_id: str, step: int) -> None:
        with self._locked() as db:
            db.execute(
                "DELETE FROM epochs WHERE run_id = ? AND step > ?", (run_id, step)
            )

    def list_runs(self) -> list[StoredRun]:
        """Return every stored run, oldest first."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT id, created_at, config, status, step, diverged_step, error, "
                "max_steps_per_second, latest_loss, latest_accuracy FROM runs "
                "ORDER BY created_at, id"
            ).fetchall()
            epochs = db.execute(
                "SELECT run_id, epoch, step, train_loss, train_accuracy, test_loss, "
                "test_accuracy FROM epochs ORDER BY run_id, epoch"
            ).fetchall()
            checkpoints = db.execute(
                "SELECT run_id, step FROM checkpoints ORDER BY run_id, step"
            ).fetchall()
        epochs_by_run: dict[str, list[EpochMetrics]] = {}
        for run_id, *values in epochs:
            epochs_by_run.setdefault(run_id, []).append(
                EpochMetrics(*(_nan_if_none(v) for v in values))
            )
        checkpoints_by_run: dict[str, list[int]] = {}
        for run_id, step in checkpoints:
            checkpoints_by_run.setdefault(run_id, []).append(int(step))
        return [
            StoredRun(
                id=row[0],
                created_at=datetime.fromisoformat(row[1]),
                config=json.loads(row[2]),
                status=row[3],
                step=int(row[4]),
                diverged_step=row[5],
                error=row[6],
                max_steps_per_second=row[7],
                latest_loss=row[8],
                latest_accuracy=row[9],
                epochs=epochs_by_run.get(row[0], []),
                checkpoint_steps=checkpoints_by_run.get(row[0], []),
            )
            for row in rows
        ]

    def run_count(self) -> int:
        with self._locked() as db:
            return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def delete_run(self, run_id: str) -> None:
        """Forget a run: wait for its queued writes, then drop its row and folder."""
        self.writer.sync()
        with self._locked() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        self._step_files.pop(run_id, None)
        run_dir = self.run_dir(run_id)
        size = _folder_bytes(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
        self._add_usage(-size)

    # checkpoints ---------------------------------------------------------------

    def queue_checkpoint(self, run_id: str, state: TrainerState) -> None:
        """Queue a checkpoint write; the index names it only once it is on disk."""
        self.writer.put(
            CallItem(
                run_id,
                lambda: self.write_checkpoint(run_id, state),
                f"checkpoint step={state.step_count}",
            )
        )

    def write_checkpoint(self, run_id: str, state: TrainerState) -> None:
        """Write a checkpoint file (atomically, synced) and index it."""
        path = self.checkpoint_path(run_id, state.step_count)
        if not path.parent.is_dir():
            return  # the run was deleted after the checkpoint was queued
        buffer = io.BytesIO()
        np.savez(buffer, **state.to_arrays())  # type: ignore[arg-type]
        payload = buffer.getvalue()
        temporary = path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        old_size = path.stat().st_size if path.exists() else 0
        os.replace(temporary, path)
        self._add_usage(len(payload) - old_size)
        with self._locked() as db:
            db.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                (run_id, state.step_count, len(payload)),
            )

    def checkpoint_steps(self, run_id: str) -> list[int]:
        """Return the steps of the run's written checkpoints, ascending."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT step FROM checkpoints WHERE run_id = ? ORDER BY step", (run_id,)
            ).fetchall()
        return [int(row[0]) for row in rows]

    def add_checkpoint_file(self, run_id: str, step: int, payload: bytes) -> None:
        """Store an imported checkpoint file as it is, and index it."""
        path = self.checkpoint_path(run_id, step)
        path.write_bytes(payload)
        self._add_usage(len(payload))
        with self._locked() as db:
            db.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                (run_id, step, len(payload)),
            )

    def replace_step_records(self, run_id: str, records: bytes) -> None:
        """Replace an idle run's step records with `records`, whole records only."""
        step_file = self._step_files[run_id]
        step_file.truncate(0)
        self._add_usage(append_records(step_file.path, [records]))

    def stored_run(self, run_id: str) -> StoredRun:
        for stored in self.list_runs():
            if stored.id == run_id:
                return stored
        raise KeyError(run_id)

    def load_checkpoint(self, run_id: str, step: int) -> TrainerState:
        with np.load(self.checkpoint_path(run_id, step)) as archive:
            return TrainerState.from_arrays({name: archive[name] for name in archive})

    def delete_checkpoints_after(self, run_id: str, step: int) -> None:
        with self._locked() as db:
            steps = [
                int(row[0])
                for row in db.execute(
                    "SELECT step FROM checkpoints WHERE run_id = ? AND step > ?",
                    (run_id, step),
                )
            ]
            db.execute(
                "DELETE FROM checkpoints WHERE run_id = ? AND step > ?", (run_id, step)
            )
        for later in steps:
            path = self.checkpoint_path(run_id, later)
            if path.exists():
                self._add_usage(-path.stat().st_size)
                path.unlink()

    # steps -----------------------------------------------------------------------

    def open_step_file(self, run_id: str) -> StepFile:
        """Open a stored run's step file, cutting off a partial last record."""
        step_file = StepFile.open(self.step_file_path(run_id))
        self._step_files[run_id] = step_file
        return step_file

    def step_file(self, run_id: str) -> StepFile:
        return self._step_files[run_id]

    def _append_steps(self, run_id: str, first_step: int, records: list[bytes]) -> None:
        step_file = self._step_files.get(run_id)
        if step_file is None or not step_file.path.exists():
            return  # the run was deleted after these steps were queued
        stored = step_file.step_count
        if stored != first_step:
            # Steps are queued in order, so this means the file changed under us.
            logger.error(
                "step file out of order, cutting it: run_id=%s stored_steps=%d "
                "first_queued_step=%d",
                run_id,
                stored,
                first_step,
            )
            if stored < first_step:
                return
            step_file.truncate(first_step)
        self._add_usage(append_records(step_file.path, records))

    def close(self) -> None:
        """Write everything queued and close the index."""
        self.writer.close()
        with self._locked() as db:
            db.close()

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._db_lock:
            yield self._db


def _real(value: float) -> float | None:
    # SQLite would turn NaN into NULL too; this makes the mapping explicit.
    return None if value != value else float(value)


def _nan_if_none(value: Any) -> Any:
    return float("nan") if value is None else value


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue  # removed while walking
    return total
