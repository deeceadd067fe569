"""A reentrant lock that a busy worker thread hands to waiting threads.

A plain lock is not fair: a worker that releases it after a step and takes it
again for the next one would keep it, and a REST read was measured waiting up
to 300 ms. Here a waiting thread registers first, and the worker, before each
step, waits until no thread is registered (or a timeout passes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Seconds the worker waits for registered threads before it takes the lock anyway.
HANDOFF_TIMEOUT = 1.0


class HandoffLock:
    """Guards a worker's state; `shared` for other threads, `worker` for the worker."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._waiters = 0
        self._waiters_guard = threading.Lock()
        self._no_waiters = threading.Event()
        self._no_waiters.set()

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock, announced to the worker so that it steps aside."""
        with self._waiters_guard:
            self._waiters += 1
            self._no_waiters.clear()
        try:
            self.lock.acquire()
        finally:
            with self._waiters_guard:
                self._waiters -= 1
                if self._waiters == 0:
                    self._no_waiters.set()
        try:
            yield
        finally:
            self.lock.release()

    @contextmanager
    def worker(self) -> Iterator[None]:
        """Hold the lock for one unit of work, after letting waiting threads in."""
        self._no_waiters.wait(HANDOFF_TIMEOUT)
        with self.lock:
            yield
