"""Fan-out of one run's steps to its connected clients, with lossless merging.

The training thread publishes; each client's sender coroutine drains. Training
never waits for a client. While a client keeps up it gets one frame per step,
encoded once and shared by every client. A client that falls behind gets its
unsent steps merged into one pending frame: every step's metrics and masks,
and the exact float32 sum of the deltas. Memory per client is therefore one
weight-sized buffer plus a few dozen bytes of masks and metrics per unsent
step, up to `max_merge_steps` steps. Past that limit the client is closed
with code 1013 and reconnects for a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from dropviz.streaming.frames import StepEntry, encode_steps, pack_masks
from dropviz.training.records import StepRecord

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013


class StepPayload:
    """One published step, shared read-only by every client."""

    def __init__(self, record: StepRecord, mask_scope: str) -> None:
        self.step = record.step
        self.mask_scope = mask_scope
        masks = record.weight_masks if record.weight_masks is not None else record.masks
        self.entry = StepEntry(
            epoch=record.epoch,
            mask_rows=0 if record.weight_masks is not None else record.batch_rows,
            loss=record.loss,
            batch_accuracy=record.batch_accuracy,
            packed_masks=pack_masks(masks),
        )
        self.weight_deltas = record.weight_deltas
        self.bias_deltas = record.bias_deltas
        self._frame: bytes | None = None
        self._frame_lock = threading.Lock()

    def frame(self) -> bytes:
        """Return this step's single-step frame, encoding it at most once."""
        with self._frame_lock:
            if self._frame is None:
                self._frame = encode_steps(
                    self.step,
                    [self.entry],
                    self.weight_deltas,
                    self.bias_deltas,
                    self.mask_scope,
                )
            return self._frame


class PendingSteps:
    """Consecutive unsent steps of one client, merged into one frame."""

    def __init__(self, payload: StepPayload) -> None:
        self.first_step = payload.step
        self.entries = [payload.entry]
        self._single: StepPayload | None = payload
        self._weight_sums: list[np.ndarray] = []
        self._bias_sums: list[np.ndarray] = []

    @property
    def step_count(self) -> int:
        return len(self.entries)

    def add(self, payload: StepPayload) -> None:
        if payload.step != self.first_step + self.step_count:
            raise ValueError(
                f"step {payload.step} does not follow steps "
                f"{self.first_step}..{self.first_step + self.step_count - 1}"
            )
        if self._single is not None:
            # The first merge copies, so the shared payload stays untouched.
            self._weight_sums = [d.copy() for d in self._single.weight_deltas]
            self._bias_sums = [d.copy() for d in self._single.bias_deltas]
            self._single = None
        for total, delta in zip(self._weight_sums, payload.weight_deltas, strict=True):
            total += delta
        for total, delta in zip(self._bias_sums, payload.bias_deltas, strict=True):
            total += delta
        self.entries.append(payload.entry)

    def encode(self, mask_scope: str) -> bytes:
        if self._single is not None:
            return self._single.frame()
        return encode_steps(
            self.first_step,
            self.entries,
            self._weight_sums,
            self._bias_sums,
            mask_scope,
        )


@dataclass(frozen=True)
class CloseRequest:
    code: int
    reason: str


class ClientQueue:
    """Unsent steps and events of one client.

    Thread-safe: the training thread fills it and one coroutine drains it.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        run_id: str,
        mask_scope: str,
        max_merge_steps: int,
    ) -> None:
        self._loop = loop
        self._run_id = run_id
        self._mask_scope = mask_scope
        self._max_merge_steps = max_merge_steps
        self._lock = threading.Lock()
        self._pending: PendingSteps | None = None
        self._events: list[str] = []
        self._close: CloseRequest | None = None
        self._wakeup = asyncio.Event()
        self.merged_frames = 0  # frames that covered more than one step

    def push_step(self, payload: StepPayload) -> None:
        with self._lock:
            if self._close is not None:
                return
            was_idle = self._pending is None and not self._events
            if self._pending is None:
                self._pending = PendingSteps(payload)
            elif self._pending.step_count >= self._max_merge_steps:
                self._close = CloseRequest(
                    CLOSE_TRY_AGAIN_LATER,
                    f"client fell {self._max_merge_steps} steps behind; reconnect",
                )
                self._pending = None
                self._events.clear()
                was_idle = True
                logger.warning(
                    "stream client lagging, closing it: run_id=%s step=%d "
                    "max_merge_steps=%d",
                    self._run_id,
                    payload.step,
                    self._max_merge_steps,
                )
            else:
                self._pending.add(payload)
        if was_idle:
            self._wake()

    def push_event(self, text: str) -> None:
        with self._lock:
            if self._close is not None:
                return
            was_idle = self._pending is None and not self._events
            self._events.append(text)
        if was_idle:
            self._wake()

    def request_close(self, code: int, reason: str) -> None:
        with self._lock:
            if self._close is None:
                self._close = CloseRequest(code, reason)
        self._wake()

    async def next_messages(self) -> list[bytes | str] | CloseRequest:
        """Wait for unsent data and take all of it, oldest first."""
        while True:
            with self._lock:
                if self._close is not None:
                    return self._close
                pending, self._pending = self._pending, None
                events, self._events = self._events, []
                if pending is None and not events:
                    self._wakeup.clear()
            if pending is not None or events:
                break
            await self._wakeup.wait()

        messages: list[bytes | str] = []
        if pending is not None:
            if pending.step_count > 1:
                self.merged_frames += 1
            messages.append(pending.encode(self._mask_scope))
        messages.extend(events)
        return messages

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._wakeup.set)
        except RuntimeError:
            # The event loop has closed at server shutdown, so no coroutine waits.
            pass


class StreamHub:
    """All clients of one run."""

    def __init__(self, run_id: str, mask_scope: str, max_merge_steps: int) -> None:
        self.run_id = run_id
        self.mask_scope = mask_scope
        self.max_merge_steps = max_merge_steps
        self._clients: list[ClientQueue] = []
        self._lock = threading.Lock()

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    def add_client(self, loop: asyncio.AbstractEventLoop) -> ClientQueue:
        client = ClientQueue(loop, self.run_id, self.mask_scope, self.max_merge_steps)
        with self._lock:
            self._clients.append(client)
        return client

    def remove_client(self, client: ClientQueue) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)

    def publish_step(self, record: StepRecord) -> None:
        with self._lock:
            clients = list(self._clients)
        if not clients:
            return
        payload = StepPayload(record, self.mask_scope)
        for client in clients:
            client.push_step(payload)

    def publish_event(self, event: dict[str, Any]) -> None:
        text = json.dumps(event, allow_nan=False, separators=(",", ":"))
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.push_event(text)

    def close_all(self, code: int, reason: str) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.request_close(code, reason)
