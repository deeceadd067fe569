"""The run state machine and the manager's limits, without a server."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from dropviz.runs.manager import RunLimitError, RunManager, RunNotFoundError
from dropviz.runs.run import Run
from dropviz.runs.states import RunStateError, RunStatus
from dropviz.streaming import frames
from dropviz.streaming.options import Ack, ClientOptions
from dropviz.training.config import TrainConfig

TINY = TrainConfig(dataset="moons", n_samples=100, hidden_sizes=(8,), batch_size=10)


def _wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_step_once_from_created_leaves_run_paused() -> None:
    run = Run("r1", TINY)
    run.step_once()
    assert run.status == RunStatus.PAUSED
    assert run.trainer.step_count == 1


def test_pause_holds_step_count() -> None:
    run = Run("r2", replace(TINY, epochs=10_000))
    run.start()
    _wait_until(lambda: run.trainer.step_count > 20)
    run.pause()
    assert run.status == RunStatus.PAUSED
    paused_at = run.trainer.step_count
    time.sleep(0.1)
    assert run.trainer.step_count == paused_at
    run.stop()
    assert run.status == RunStatus.STOPPED


def test_control_calls_rejected_in_wrong_state() -> None:
    run = Run("r3", TINY)
    with pytest.raises(RunStateError, match="Cannot pause run r3: it is created"):
        run.pause()
    run.stop()
    for action in (run.start, run.step_once, run.stop, run.pause):
        with pytest.raises(RunStateError, match="it is stopped"):
            action()


def test_finished_run_reports_final_accuracy() -> None:
    run = Run("r4", replace(TINY, epochs=3))
    run.start()
    _wait_until(lambda: run.status == RunStatus.FINISHED)
    summary = run.summary()
    assert summary["step"] == summary["total_steps"]
    assert summary["epoch"] == 2
    assert summary["final_test_accuracy"] == run.epochs[-1].test_accuracy
    assert [m.epoch for m in run.epochs] == [0, 1, 2]


def test_pause_resume_cycles_stream_every_step_once() -> None:
    async def scenario() -> None:
        config = replace(TINY, epochs=10_000)
        run = Run("r5", config)
        options = ClientOptions(max_frames_per_second=60.0)
        snapshot, client = run.subscribe(asyncio.get_running_loop(), options)
        layer_sizes = frames.decode_snapshot(snapshot).meta["layer_sizes"]
        covered = []
        for _ in range(5):
            await asyncio.to_thread(run.start)
            await asyncio.sleep(0.02)
            batch = run.hub.take(client, steps_due=True)  # a take mid-training
            if batch.segment is not None:
                covered.append(batch.segment)
            await asyncio.to_thread(run.pause)
            await asyncio.to_thread(run.step_once)
        await asyncio.to_thread(run.stop)
        batch = run.hub.take(client, steps_due=True)
        assert batch.segment is not None
        covered.append(batch.segment)

        steps = []
        for segment in covered:
            message = segment.messages(config.mask_scope, "float32", 0b11, 1 << 24)[0]
            frame = frames.decode_steps(message, layer_sizes)
            steps.extend(range(frame.first_step, frame.last_step + 1))
        assert steps == list(range(run.trainer.step_count))

    asyncio.run(scenario())


def test_step_locked_client_gates_training() -> None:
    async def scenario() -> None:
        run = Run("r6", replace(TINY, epochs=10_000))
        options = ClientOptions(max_frames_per_second=60.0, step_locked=True)
        _, client = run.subscribe(asyncio.get_running_loop(), options)
        await asyncio.to_thread(run.start)
        for acked in range(3):
            # The worker trains one step past the last acknowledged one, then waits.
            await asyncio.to_thread(_wait_until, lambda: run.trainer.step_count > 0)
            await asyncio.sleep(0.1)
            assert run.trainer.step_count == acked + 1
            batch = run.hub.take(client, steps_due=True)
            assert batch.segment is not None
            assert batch.segment.step_count == 1
            run.hub.handle_message(client, Ack(batch.segment.first_step))
            expected = acked + 2
            await asyncio.to_thread(
                _wait_until,
                lambda expected=expected: run.trainer.step_count == expected,
            )
        await asyncio.to_thread(run.pause)  # a waiting worker still stops
        assert run.status == RunStatus.PAUSED

    asyncio.run(scenario())


def test_manager_enforces_running_run_limit() -> None:
    manager = RunManager(max_running_runs=1, max_merge_steps=100)
    config = replace(TINY, epochs=10_000)
    first, second = manager.create(config, 50.0), manager.create(config, 50.0)
    manager.start(first.id)
    with pytest.raises(RunLimitError, match="max_running_runs is 1"):
        manager.start(second.id)
    first.pause()
    manager.start(second.id)
    manager.shutdown()
    assert first.status == RunStatus.PAUSED
    assert second.status == RunStatus.INTERRUPTED  # it was running at shutdown


def test_manager_delete_forgets_run() -> None:
    manager = RunManager(max_running_runs=2, max_merge_steps=100)
    run = manager.create(TINY)
    manager.delete(run.id)
    with pytest.raises(RunNotFoundError):
        manager.get(run.id)
