"""The allocator calls: harmless wherever they run, and the loop stops on cancel."""

from __future__ import annotations

import asyncio

import pytest

from dropviz import memory


def test_configure_and_release_run_without_error() -> None:
    memory.configure_malloc(2, 1 << 20)
    memory.release_free_memory()


def test_periodic_release_repeats_until_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: calls.append(1))

    async def scenario() -> None:
        task = asyncio.create_task(memory.release_free_memory_every(0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    assert len(calls) >= 3
