"""Fan-out of one run's steps to its clients, with shared lossless merging.

The training thread publishes; one sender coroutine per client drains. Training
never waits for a client, except for clients in step-locked mode, which hold
each next step until they acknowledge the previous frame.

Published steps accumulate in one open segment per run: every step's metrics
and masks. A client that takes steps seals the open segment, and the sealed
segment is appended to every client's backlog. Sealing reads the run's live
parameters once: the segment's deltas are the parameters now minus a copy
taken at the previous seal. So publishing a step copies no weight-sized array
at all, and one seal costs one subtraction and one copy whatever the number of
steps it covers or clients it serves. A backlog that already contains steps
becomes a new segment with the sum of both, computed once per distinct
backlog and shared by every client that had it. Sealed segments never change,
so each is encoded at most once per (delta dtype, delta layers) pair.

Reading the live parameters needs the lock that the training thread takes
while a step changes them. The training thread and the run's control methods
already have it when they call in. A sender on the event loop only tries to
acquire it without blocking. When training has it, the sender sets a request
and the training thread seals at its next publish instead.

Memory per run: the parameters' copy at the last seal plus one segment per
distinct backlog. Each segment contains one weight-sized delta, 16 bytes of
metrics plus the packed masks per step, and, once sent, its encoded frame for
each option set in use. A client whose backlog passes `max_merge_steps` steps
is closed with code 1013 and reconnects for a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dropviz.streaming.frames import (
    StepEntry,
    encode_packed_steps,
    pack_masks,
    split_message,
    step_table_row,
)
from dropviz.streaming.options import (
    Ack,
    ClientMessage,
    ClientMessageError,
    ClientOptions,
    OptionsUpdate,
    Resync,
)
from dropviz.training.records import StepRecord

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013
LAG_LOG_INTERVAL = 30.0  # seconds between two lag warnings of one run


class StepPayload:
    """One published step's metrics and packed masks."""

    def __init__(self, record: StepRecord) -> None:
        self.step = record.step
        dropconnect = record.weight_masks is not None
        self.table_row = step_table_row(
            StepEntry(
                epoch=record.epoch,
                # DropConnect steps carry weight masks, whose rows are per source unit.
                mask_rows=0 if dropconnect else record.batch_rows,
                loss=record.loss,
                batch_accuracy=record.batch_accuracy,
                packed_masks=b"",
            )
        )
        masks = record.weight_masks if record.weight_masks is not None else record.masks
        self.packed_masks = pack_masks(masks)


class Segment:
    """Consecutive steps and, once sealed, the float32 change of the parameters.

    The step table and the masks are kept packed, as the frame carries them:
    tens of thousands of per-step objects would fragment the heap. The hub's
    open segment grows under the hub lock and has no deltas yet. Sealing sets
    them; from then on a segment never changes and may be shared by any number
    of clients.
    """

    def __init__(
        self,
        first_step: int,
        step_table: bytes | bytearray,
        packed_masks: bytes | bytearray,
    ) -> None:
        self.first_step = first_step
        self.step_count = 1
        self.step_table = bytearray(step_table)  # step_table_row records, in order
        self.packed_masks = bytearray(packed_masks)  # each step's pack_masks output
        self.weight_deltas: list[np.ndarray] = []  # set when sealed
        self.bias_deltas: list[np.ndarray] = []
        self.sealed = False
        self._messages: dict[tuple[str, int], list[bytes]] = {}
        self._encode_lock = threading.Lock()

    @classmethod
    def of_step(cls, payload: StepPayload) -> Segment:
        return cls(payload.step, payload.table_row, payload.packed_masks)

    @classmethod
    def concatenate(cls, first: Segment, second: Segment) -> Segment:
        """Return a sealed segment covering `first`'s steps, then `second`'s."""
        if not (first.sealed and second.sealed):
            raise RuntimeError("only sealed segments can be concatenated")
        if second.first_step != first.end_step:
            raise ValueError(
                f"segment starting at step {second.first_step} does not follow "
                f"steps {first.first_step}..{first.end_step - 1}"
            )
        segment = cls(
            first.first_step,
            first.step_table + second.step_table,
            first.packed_masks + second.packed_masks,
        )
        segment.step_count = first.step_count + second.step_count
        segment.seal(
            [
                a + b
                for a, b in zip(first.weight_deltas, second.weight_deltas, strict=True)
            ],
            [a + b for a, b in zip(first.bias_deltas, second.bias_deltas, strict=True)],
        )
        return segment

    @property
    def end_step(self) -> int:
        """The first step after this segment."""
        return self.first_step + self.step_count

    def add(self, payload: StepPayload) -> None:
        """Append one step; only for the open segment, under the hub lock."""
        if self.sealed:
            raise RuntimeError("cannot add a step to a sealed segment")
        if payload.step != self.end_step:
            raise ValueError(
                f"step {payload.step} does not follow steps "
                f"{self.first_step}..{self.end_step - 1}"
            )
        self.step_table += payload.table_row
        self.packed_masks += payload.packed_masks
        self.step_count += 1

    def seal(
        self, weight_deltas: list[np.ndarray], bias_deltas: list[np.ndarray]
    ) -> None:
        """Fix the parameters' change over the covered steps; arrays become ours."""
        if self.sealed:
            raise RuntimeError("segment is sealed already")
        self.weight_deltas = weight_deltas
        self.bias_deltas = bias_deltas
        self.sealed = True

    def is_encoded(self, delta_dtype: str, delta_layers: int) -> bool:
        return (delta_dtype, delta_layers) in self._messages

    def messages(
        self, mask_scope: str, delta_dtype: str, delta_layers: int, max_bytes: int
    ) -> list[bytes]:
        """Return this segment's steps frame, split into parts above `max_bytes`.

        Encodes at most once per (dtype, layers). Raises RuntimeError while the
        segment is open, since its sums still change.
        """
        if not self.sealed:
            raise RuntimeError("cannot encode an open segment")
        key = (delta_dtype, delta_layers)
        with self._encode_lock:
            if key not in self._messages:
                frame = encode_packed_steps(
                    self.first_step,
                    self.step_count,
                    self.step_table,
                    self.packed_masks,
                    self.weight_deltas,
                    self.bias_deltas,
                    mask_scope,
                    delta_layers=delta_layers,
                    delta_dtype=delta_dtype,
                )
                self._messages[key] = split_message(frame, max_bytes)
            return self._messages[key]


@dataclass(frozen=True)
class CloseRequest:
    code: int
    reason: str
    flush: bool  # send the pending steps and events first


@dataclass
class Batch:
    """The messages a client's sender may send now, in this order."""

    replies: list[str] = field(default_factory=list)
    segment: Segment | None = None
    events: list[str] = field(default_factory=list)
    close: CloseRequest | None = None
    resync: bool = False  # send a fresh snapshot before anything else
    steps_waiting: bool = False  # steps wait for the client's next frame time
    # Steps are due but training held the parameters: the training thread
    # seals them at its next step, or a retry finds the parameters free.
    seal_pending: bool = False

    def is_empty(self) -> bool:
        return not (
            self.replies or self.segment or self.events or self.close or self.resync
        )


class ClientQueue:
    """One client's options, position and unsent data; guarded by the hub lock."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, options: ClientOptions, next_step: int
    ) -> None:
        self.options = options
        self.next_step = next_step  # the first step not yet taken for sending
        self.acked_next = next_step  # steps before it count as acknowledged
        self.backlog: Segment | None = None  # sealed steps from next_step on
        self.events: list[tuple[int, str]] = []  # (steps published before, JSON)
        self.replies: list[str] = []
        self.close: CloseRequest | None = None
        self.resync_requested = False
        self.frames = 0
        self.merged_frames = 0  # frames that covered more than one step
        self.late_frames = 0  # frames whose send outlasted the frame interval
        self._loop = loop
        self._wakeup = asyncio.Event()

    async def wait(self, timeout: float | None) -> None:
        """Wait until the hub has news for this client, or `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    def clear_wakeup(self) -> None:
        """Forget past news; only the event loop that runs `wait` may call it."""
        self._wakeup.clear()

    def wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._wakeup.set)
        except RuntimeError:
            # The event loop has closed at server shutdown, so no coroutine waits.
            pass


class StreamHub:
    """All clients of one run. Every method is thread-safe.

    `parameters` returns the run's live weights and biases, which change only
    while a thread has acquired `parameters_lock`. `publish_step`, `add_client` and
    `restart_client` read them, so their callers must hold that lock.
    """

    def __init__(
        self,
        run_id: str,
        mask_scope: str,
        max_merge_steps: int,
        layer_count: int,
        parameters: Callable[[], tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
        parameters_lock: threading.RLock,
    ) -> None:
        self.run_id = run_id
        self.mask_scope = mask_scope
        self.max_merge_steps = max_merge_steps
        self.layer_count = layer_count
        self._parameters = parameters
        self._parameters_lock = parameters_lock
        self._clients: list[ClientQueue] = []
        self._open: Segment | None = None
        # Weights, then biases, as they were when the open segment began; kept
        # only while some client watches.
        self._base: list[np.ndarray] | None = None
        self._seal_requested = False  # a sender found training holding the parameters
        self._published = 0  # steps published so far
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)
        self._lag = _LagLog(run_id)
        # Cost counters, read by tests and the benchmark.
        self.seals = 0  # subtractions of the base from the live parameters
        self.merges = 0  # sums of a backlog and a newly sealed segment
        self.publish_seconds = 0.0  # time the training thread spent publishing

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    # clients ---------------------------------------------------------------

    def add_client(
        self,
        loop: asyncio.AbstractEventLoop,
        options: ClientOptions,
        next_step: int,
    ) -> ClientQueue:
        """Register a client whose snapshot was taken after `next_step` steps.

        Hold the parameters lock from the snapshot until this returns.
        """
        with self._lock:
            self._seal()  # the new client gets no step from before its snapshot
            client = ClientQueue(loop, options, next_step)
            self._clients.append(client)
            return client

    def restart_client(self, client: ClientQueue, next_step: int) -> None:
        """Drop a client's backlog: it gets a fresh snapshot at `next_step`.

        Hold the parameters lock, as for `add_client`.
        """
        with self._lock:
            self._seal()
            client.backlog = None
            client.next_step = next_step
            client.acked_next = max(client.acked_next, next_step)
            client.resync_requested = False
            self._acked.notify_all()

    def remove_client(self, client: ClientQueue) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
            if not self._clients:
                # No client remains to take these steps.
                self._open = None
                self._base = None
                self._seal_requested = False
            self._acked.notify_all()

    def handle_message(self, client: ClientQueue, message: ClientMessage) -> None:
        """Apply a parsed client message; raise ClientMessageError if it is invalid."""
        if isinstance(message, OptionsUpdate):
            self._set_options(client, message)
        elif isinstance(message, Ack):
            self._acknowledge(client, message.step)
        elif isinstance(message, Resync):
            with self._lock:
                client.resync_requested = True
        client.wake()

    def request_close(
        self, client: ClientQueue, code: int, reason: str, flush: bool
    ) -> None:
        with self._lock:
            if client.close is None:
                client.close = CloseRequest(code, reason, flush)
            self._acked.notify_all()
        client.wake()

    def close_all(self, code: int, reason: str) -> None:
        """Close every client once it has sent what is pending."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            self.request_close(client, code, reason, flush=True)

    # publishing --------------------------------------------------------------

    def publish_step(self, record: StepRecord) -> None:
        """Add a trained step; call with the parameters lock, after the update."""
        start = time.perf_counter()
        payload = StepPayload(record) if self._clients else None
        with self._lock:
            self._published = record.step + 1
            if payload is None or not self._clients:
                return
            new_segment = self._open is None
            if self._open is None:
                self._open = Segment.of_step(payload)
            else:
                self._open.add(payload)
            sealed = (
                self._seal_requested or self._open.step_count >= self.max_merge_steps
            )
            if sealed:
                self._seal()
            clients = list(self._clients) if new_segment or sealed else []
            self.publish_seconds += time.perf_counter() - start
        for client in clients:
            client.wake()  # each of them now has steps waiting

    def publish_event(self, event: dict[str, Any]) -> None:
        text = json.dumps(event, allow_nan=False, separators=(",", ":"))
        with self._lock:
            clients = list(self._clients)
            for client in clients:
                if client.close is None or client.close.flush:
                    client.events.append((self._published, text))
        for client in clients:
            client.wake()

    # sending -----------------------------------------------------------------

    def take(self, client: ClientQueue, steps_due: bool) -> Batch:
        """Take what `client` may send now; steps only when `steps_due`.

        Called by the client's sender on the event loop. An empty batch clears
        the client's wakeup, so the next news wakes `ClientQueue.wait`.
        """
        with self._lock:
            close = client.close
            if close is not None and not close.flush:
                return Batch(close=close)
            if client.resync_requested and close is None:
                return Batch(resync=True)

            batch = Batch(replies=client.replies)
            client.replies = []
            if steps_due or close is not None:
                self._take_steps(client, batch, flush=close is not None)
            due = [text for after, text in client.events if after <= client.next_step]
            client.events = [e for e in client.events if e[0] > client.next_step]
            batch.events = due
            batch.steps_waiting = client.backlog is not None or self._open is not None
            batch.seal_pending = self._seal_requested
            if close is not None and not batch.steps_waiting and not client.events:
                batch.close = close
            if batch.is_empty():
                client.clear_wakeup()
            return batch

    def _take_steps(self, client: ClientQueue, batch: Batch, flush: bool) -> None:
        backlog_end = client.backlog.end_step if client.backlog else client.next_step
        events_need_steps = any(after > backlog_end for after, _ in client.events)
        if client.backlog is None or events_need_steps or flush:
            self._try_seal()
        segment, client.backlog = client.backlog, None
        if segment is not None:
            client.next_step = segment.end_step
            batch.segment = segment

    def record_frame(self, client: ClientQueue, step_count: int, late: bool) -> None:
        """Count one sent steps frame for the disconnect log and lag warnings."""
        with self._lock:
            client.frames += 1
            client.merged_frames += step_count > 1
            client.late_frames += late
            self._lag.record(step_count, late)

    # step-locked clients -----------------------------------------------------

    def wait_for_acks(self, step: int, halt: threading.Event) -> bool:
        """Block until every step-locked client acknowledged the steps before `step`.

        Return False if `halt` was set meanwhile; `release_waiters` wakes the wait.
        """
        with self._acked:
            while not halt.is_set():
                if all(
                    client.acked_next >= step
                    for client in self._clients
                    if client.options.step_locked and client.close is None
                ):
                    return True
                self._acked.wait()
            return False

    def release_waiters(self) -> None:
        with self._acked:
            self._acked.notify_all()

    # internals -----------------------------------------------------------------

    def _set_options(self, client: ClientQueue, update: OptionsUpdate) -> None:
        with self._lock:
            old = client.options
            new = update.apply(old)
            client.options = new
            if new.step_locked and not old.step_locked:
                # Steps published so far need no acknowledgement.
                client.acked_next = max(client.acked_next, self._published)
            added = new.frame_layers(self.layer_count) & ~old.frame_layers(
                self.layer_count
            )
            if added:
                # The client missed these layers' deltas, so its copy is stale.
                client.resync_requested = True
            # Only the latest confirmation matters, so a client that sends
            # options without reading cannot make the list grow.
            client.replies = [
                json.dumps(new.to_message(self.layer_count), separators=(",", ":"))
            ]
            self._acked.notify_all()

    def _acknowledge(self, client: ClientQueue, step: int) -> None:
        with self._lock:
            if step >= client.next_step:
                raise ClientMessageError(
                    f"ack for step {step}, which was not sent; "
                    f"last sent step is {client.next_step - 1}"
                )
            client.acked_next = max(client.acked_next, step + 1)
            self._acked.notify_all()

    def _try_seal(self) -> None:
        """Seal now if training does not hold the parameters, else at its next step.

        Runs on the event loop, so it acquires the parameters lock only without
        blocking.
        """
        if self._open is None:
            return
        if not self._parameters_lock.acquire(blocking=False):
            self._seal_requested = True
            return
        try:
            self._seal()
        finally:
            self._parameters_lock.release()

    def _seal(self) -> None:
        """Move the open segment into every client's backlog.

        Hold the hub lock and the parameters lock. The segment's deltas are the
        live parameters minus the base, which then becomes their copy.
        """
        self._seal_requested = False
        weights, biases = self._parameters()
        current = [*weights, *biases]
        segment, self._open = self._open, None
        if self._base is None:
            # The first client: its snapshot already holds every earlier step.
            self._base = [array.copy() for array in current]
            return
        if segment is None:
            return  # no step since the last seal, so the base is current
        deltas = [now - before for now, before in zip(current, self._base, strict=True)]
        for before, now in zip(self._base, current, strict=True):
            np.copyto(before, now)
        self.seals += 1
        segment.seal(deltas[: len(weights)], deltas[len(weights) :])
        merged: dict[Segment, Segment] = {}
        for client in self._clients:
            if client.close is not None and not client.close.flush:
                continue
            if client.backlog is None:
                client.backlog = segment
                continue
            if client.backlog not in merged:
                merged[client.backlog] = Segment.concatenate(client.backlog, segment)
                self.merges += 1
            client.backlog = merged[client.backlog]
            if client.backlog.step_count > self.max_merge_steps:
                self._close_lagging(client)

    def _close_lagging(self, client: ClientQueue) -> None:
        client.close = CloseRequest(
            CLOSE_TRY_AGAIN_LATER,
            f"client fell {self.max_merge_steps} steps behind; reconnect",
            flush=False,
        )
        client.backlog = None
        client.events.clear()
        self._lag.record_close()
        client.wake()


class _LagLog:
    """Counts frames of one run and warns about lagging clients, rate-limited."""

    def __init__(self, run_id: str) -> None:
        self._run_id = run_id
        self._window_start = time.monotonic()
        self._reset()

    def _reset(self) -> None:
        self._frames = 0
        self._merged_frames = 0
        self._merged_steps = 0
        self._late_frames = 0
        self._lag_closes = 0

    def record(self, step_count: int, late: bool) -> None:
        self._frames += 1
        if step_count > 1:
            self._merged_frames += 1
            self._merged_steps += step_count
        self._late_frames += late
        self._maybe_log()

    def record_close(self) -> None:
        self._lag_closes += 1
        self._maybe_log()

    def _maybe_log(self) -> None:
        elapsed = time.monotonic() - self._window_start
        if elapsed < LAG_LOG_INTERVAL:
            return
        if self._late_frames or self._lag_closes:
            logger.warning(
                "stream clients lagging: run_id=%s late_frames=%d lag_closes=%d "
                "frames=%d merged_frames=%d merged_steps=%d seconds=%.0f",
                self._run_id,
                self._late_frames,
                self._lag_closes,
                self._frames,
                self._merged_frames,
                self._merged_steps,
                elapsed,
            )
        else:
            logger.debug(
                "stream frames: run_id=%s frames=%d merged_frames=%d "
                "merged_steps=%d seconds=%.0f",
                self._run_id,
                self._frames,
                self._merged_frames,
                self._merged_steps,
                elapsed,
            )
        self._window_start = time.monotonic()
        self._reset()
