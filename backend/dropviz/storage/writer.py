"""The storage writer: one thread that persists what training threads queue.

Training threads only encode a step (a few dozen bytes of packed masks and
metrics) and put it on a bounded queue. This thread appends the records to
the step files, writes checkpoints and updates the run index. It wakes at
most every BATCH_SECONDS while steps arrive, drains the queue, and appends
each run's steps with one write call. So a process crash (`kill -9`) loses
only the steps still queued: those of the last 50 ms, plus any backlog.

Queue-full policy: `put` blocks the training thread until the writer makes
room. The bound (`DROPVIZ_STORAGE_QUEUE_ITEMS`, 65,536 by default) is about
15 s of steps at the 4,100 to 4,600 steps/s that bench/storage_size.py
measured, so
training waits only when the disk stalls. Each wait is counted, and a
warning is logged at most once per minute.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

WAIT_LOG_INTERVAL = 60.0  # seconds between two "queue full" warnings
SYNC_TIMEOUT = 30.0  # seconds `sync` waits for the writer before giving up
BATCH_SECONDS = 0.05  # the writer's wait for more steps after the first
MAX_BATCH_ITEMS = 10_000  # items applied per wake-up


@dataclass(frozen=True)
class StepsItem:
    run_id: str
    first_step: int
    records: list[bytes]  # encoded step records, consecutive from first_step


@dataclass(frozen=True)
class CallItem:
    """Any other write: `action` runs on the writer thread, in queue order."""

    run_id: str
    action: Callable[[], None]
    description: str


@dataclass(frozen=True)
class BarrierItem:
    done: threading.Event = field(default_factory=threading.Event)


_StopItem = object()
QueueItem = StepsItem | CallItem | BarrierItem


class StorageWriter:
    """A thread that applies queued writes in order; see the module docstring."""

    def __init__(
        self, max_items: int, append_steps: Callable[[str, int, list[bytes]], None]
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(max_items)
        self._append_steps = append_steps
        self.full_waits = 0  # puts that found the queue full and waited
        self._last_wait_log = 0.0
        self._thread = threading.Thread(
            target=self._run, name="storage-writer", daemon=True
        )
        self._thread.start()

    def put(self, item: QueueItem) -> None:
        """Queue an item; wait while the queue is full."""
        try:
            self._queue.put_nowait(item)
            return
        except queue.Full:
            pass
        self.full_waits += 1
        now = time.monotonic()
        if now - self._last_wait_log >= WAIT_LOG_INTERVAL:
            self._last_wait_log = now
            logger.warning(
                "storage queue full, training waits for the disk: "
                "max_items=%d full_waits=%d",
                self._queue.maxsize,
                self.full_waits,
            )
        self._queue.put(item)

    def sync(self, timeout: float = SYNC_TIMEOUT) -> bool:
        """Wait until everything queued before this call is written."""
        if not self._thread.is_alive():
            return False
        barrier = BarrierItem()
        self.put(barrier)
        done = barrier.done.wait(timeout)
        if not done:
            logger.warning(
                "storage sync timed out: timeout=%.1f queued=%d",
                timeout,
                self._queue.qsize(),
            )
        return done

    def close(self) -> None:
        """Write everything queued, then end the thread."""
        if self._thread.is_alive():
            self._queue.put(_StopItem)
            self._thread.join()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            if isinstance(batch[0], StepsItem):
                # Let steps gather: waking for every step of a fast run costs
                # the training thread about a third of its speed (GIL and
                # system calls), measured with bench/storage_size.py.
                time.sleep(BATCH_SECONDS)
            while len(batch) < MAX_BATCH_ITEMS:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = self._apply(batch)
            if stop:
                return

    def _apply(self, batch: list[Any]) -> bool:
        """Apply a batch in order, merging consecutive steps of a run."""
        pending: dict[str, StepsItem] = {}
        for item in batch:
            if isinstance(item, StepsItem):
                merged = pending.get(item.run_id)
                if merged is None:
                    pending[item.run_id] = item
                else:
                    merged.records.extend(item.records)
                continue
            self._flush_steps(pending)
            if item is _StopItem:
                return True
            if isinstance(item, BarrierItem):
                item.done.set()
            elif isinstance(item, CallItem):
                self._call(item)
        self._flush_steps(pending)
        return False

    def _flush_steps(self, pending: dict[str, StepsItem]) -> None:
        for run_id, item in pending.items():
            try:
                self._append_steps(run_id, item.first_step, item.records)
            except OSError:
                logger.exception(
                    "storage write failed: run_id=%s first_step=%d steps=%d",
                    run_id,
                    item.first_step,
                    len(item.records),
                )
        pending.clear()

    def _call(self, item: CallItem) -> None:
        try:
            item.action()
        except Exception:
            # The writer must outlive one bad write, or every later one is lost.
            logger.exception(
                "storage write failed: run_id=%s write=%s",
                item.run_id,
                item.description,
            )
