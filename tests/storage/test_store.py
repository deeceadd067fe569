"""The run store with the manager, in process: record, crash, restore, resume."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from dropviz.runs.manager import RunManager, StoragePolicy
from dropviz.runs.restore import restore_runs
from dropviz.runs.states import RunStatus
from dropviz.storage.store import RunStore
from dropviz.storage.writer import StepsItem, StorageWriter
from dropviz.training.config import TrainConfig
from dropviz.training.trainer import Trainer

MOONS = TrainConfig(
    dataset="moons", n_samples=100, hidden_sizes=(8,), batch_size=10, epochs=50
)


def _manager(state_dir: Path, checkpoint_steps: int = 37) -> RunManager:
    store = RunStore(state_dir)
    manager = RunManager(
        2, 100, store, StoragePolicy(checkpoint_steps=checkpoint_steps)
    )
    restore_runs(manager, store)
    return manager


def _bits(trainer: Trainer) -> list[bytes]:
    return [a.tobytes() for a in trainer.params.weights + trainer.params.biases]


def test_restore_after_crash_resumes_bit_identically(tmp_path: Path) -> None:
    config = replace(MOONS, optimizer="adam", learning_rate=0.01, epochs=10_000)
    manager = _manager(tmp_path)
    run = manager.create(config)
    manager.start(run.id)
    time.sleep(0.2)
    run.pause()
    for _ in range(3):  # single steps after the pause's checkpoint
        run.step_once()
    step_count = run.trainer.step_count
    assert manager.store is not None
    manager.store.writer.sync()

    # A second store on the same folder, as after kill -9: nothing was closed.
    restored = _manager(tmp_path).get(run.id)
    assert restored.status == RunStatus.PAUSED
    assert restored.trainer.step_count == step_count
    assert [m.epoch for m in restored.epochs] == [m.epoch for m in run.epochs]

    for _ in range(20):
        restored.step_once()
    reference = Trainer(config)
    for _ in range(step_count + 20):
        reference.step()
    assert _bits(restored.trainer) == _bits(reference)


def test_restore_marks_running_run_interrupted(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    run = manager.create(replace(MOONS, epochs=10_000))
    manager.start(run.id)
    time.sleep(0.2)
    assert manager.store is not None
    manager.store.writer.sync()
    recorded = manager.store.step_file(run.id).step_count

    restored = _manager(tmp_path).get(run.id)
    assert restored.status == RunStatus.INTERRUPTED
    assert restored.trainer.step_count >= recorded
    run.stop()


def test_delete_removes_run_folder(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    run = manager.create(MOONS)
    run.step_once()
    assert manager.store is not None
    folder = manager.store.run_dir(run.id)
    assert folder.is_dir()
    manager.delete(run.id)
    assert not folder.exists()
    assert manager.store.run_count() == 0
    assert _manager(tmp_path).list() == []


def test_writer_full_queue_waits_and_keeps_order(tmp_path: Path) -> None:
    written: list[int] = []

    def append(run_id: str, first_step: int, records: list[bytes]) -> None:
        time.sleep(0.001)  # a slow disk
        written.extend(range(first_step, first_step + len(records)))

    writer = StorageWriter(4, append)
    for step in range(200):
        writer.put(StepsItem("r", step, [b""]))
    assert writer.sync()
    writer.close()
    assert written == list(range(200))
    assert writer.full_waits > 0
