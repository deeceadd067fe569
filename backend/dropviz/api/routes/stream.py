"""`WS /ws/runs/{run_id}`: a snapshot, then every step (docs/protocol.md).

Each connection has two tasks. The sender takes the client's frames from the
run's hub at most `max_frames_per_second` times a second and sends them. It is
the only task that writes to the socket, so the parts of a split message stay
consecutive. The receiver reads client messages (options, acknowledgements, resync) and
notices a disconnect at once, so a closed tab frees its queue without waiting
for the next send. A peer that vanished without closing is dropped by the
keepalive ping (`dropviz.server`), which ends both tasks.

A slow client only slows its own sender: the hub merges the steps it has not
taken yet, and training never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnected

from dropviz.api.origins import origin_allowed
from dropviz.config import Settings
from dropviz.runs.manager import RunManager, RunNotFoundError
from dropviz.runs.run import Run
from dropviz.streaming.frames import split_message
from dropviz.streaming.hub import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    Batch,
    ClientQueue,
)
from dropviz.streaming.options import (
    ClientMessageError,
    ClientOptions,
    parse_client_message,
)

logger = logging.getLogger(__name__)

router = APIRouter()

# Delay before a sender retries sealing steps while training had the lock.
# A running run seals at its next step and wakes the sender before this.
SEAL_RETRY_SECONDS = 0.005

# uvicorn's error for a send after its keepalive closed the connection; text
# checked against uvicorn 0.55.0.
_UVICORN_SEND_AFTER_CLOSE = "after sending 'websocket.close'"


def _is_closed_connection_error(exc: BaseException) -> bool:
    """Return whether `exc` only reports that the connection is already closing.

    Starlette turns the server's OSError into WebSocketDisconnect(1006) and
    raises WebSocketDisconnected (a RuntimeError) for a send after a close.
    """
    if isinstance(exc, WebSocketDisconnect | WebSocketDisconnected | OSError):
        return True
    return isinstance(exc, RuntimeError) and _UVICORN_SEND_AFTER_CLOSE in str(exc)


@router.websocket("/ws/runs/{run_id}")
async def stream_run(websocket: WebSocket, run_id: str) -> None:
    manager: RunManager = websocket.app.state.runs
    settings: Settings = websocket.app.state.settings
    client_name = (
        f"{websocket.client.host}:{websocket.client.port}" if websocket.client else "?"
    )
    # Accept before any close: a close during the handshake reaches the browser
    # as a bare HTTP 403, without the code and reason below.
    await websocket.accept()
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.app.state.allowed_origins):
        detail = f"origin not allowed origin={(origin or '')[:200]!r}"
        await _reject(websocket, "origin not allowed", detail, client_name, run_id)
        return
    try:
        run = manager.get(run_id)
    except RunNotFoundError:
        await _reject(
            websocket, "unknown run id", "unknown run id", client_name, run_id
        )
        return

    # NOTE: two handshakes at the same moment may both pass this check, so a
    # run can briefly have one client more than max_clients_per_run.
    if run.hub.client_count >= settings.max_clients_per_run:
        limit = settings.max_clients_per_run
        await websocket.close(
            code=CLOSE_TRY_AGAIN_LATER, reason=f"max_clients_per_run is {limit}"
        )
        logger.info(
            "stream rejected: client=%s run_id=%s reason=max_clients_per_run %d",
            client_name,
            run_id,
            limit,
        )
        return

    loop = asyncio.get_running_loop()
    options = ClientOptions(max_frames_per_second=settings.max_frames_per_second)
    snapshot, client = await run_in_threadpool(run.subscribe, loop, options)
    logger.info(
        "stream client connected: client=%s run_id=%s clients=%d",
        client_name,
        run_id,
        run.hub.client_count,
    )
    close_code: int = status.WS_1000_NORMAL_CLOSURE
    try:
        await _send_binary(websocket, snapshot, settings.stream_max_message_bytes)
        close_code = await _serve(websocket, run, client, settings)
    except Exception as exc:
        if _is_closed_connection_error(exc):
            # The peer left while we were sending: a normal disconnect.
            close_code = getattr(exc, "code", status.WS_1006_ABNORMAL_CLOSURE)
            logger.debug("stream send failed: client=%s error=%r", client_name, exc)
        else:
            close_code = status.WS_1011_INTERNAL_ERROR
            logger.exception("stream failed: client=%s run_id=%s", client_name, run_id)
            with contextlib.suppress(Exception):
                await websocket.close(code=close_code, reason="internal error")
    finally:
        run.hub.remove_client(client)
        logger.info(
            "stream client disconnected: client=%s run_id=%s code=%s frames=%d "
            "merged_frames=%d late_frames=%d",
            client_name,
            run_id,
            close_code,
            client.frames,
            client.merged_frames,
            client.late_frames,
        )


async def _reject(
    websocket: WebSocket, reason: str, log_detail: str, client_name: str, run_id: str
) -> None:
    """Close a new connection with 1008 and `reason`; log `log_detail`."""
    await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=reason)
    logger.info(
        "stream rejected: client=%s run_id=%s reason=%s",
        client_name,
        run_id,
        log_detail,
    )


async def _serve(
    websocket: WebSocket, run: Run, client: ClientQueue, settings: Settings
) -> int:
    """Run the sender and the receiver until one ends; return the close code."""
    sender = asyncio.create_task(_send_loop(websocket, run, client, settings))
    receiver = asyncio.create_task(_receive_loop(websocket, run, client, settings))
    try:
        done, _ = await asyncio.wait(
            {sender, receiver}, return_when=asyncio.FIRST_COMPLETED
        )
        if sender in done:
            return sender.result()
        peer_code = receiver.result()
        if peer_code is None:
            # The receiver rejected a message and asked the sender to close.
            return await sender
        return peer_code
    finally:
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _send_loop(
    websocket: WebSocket, run: Run, client: ClientQueue, settings: Settings
) -> int:
    """Send the client's batches until the server closes; return the close code.

    Steps go out at multiples of the frame interval (`_frame_interval`) on
    the event loop's clock, so clients with equal intervals take steps
    together and share one merge and one encoding. Without a cap a fast run
    fills the socket buffers with single-step frames and the page shows
    seconds-old steps.
    """
    manager: RunManager = websocket.app.state.runs
    loop = asyncio.get_running_loop()
    next_frame_time = 0.0
    while True:
        now = loop.time()
        batch = run.hub.take(client, steps_due=now >= next_frame_time)
        if batch.is_empty():
            timeout = max(0.0, next_frame_time - now) if batch.steps_waiting else None
            if batch.seal_pending:
                # Training seals at its next step and wakes us; a paused or
                # slow step leaves the parameters free for a retry instead.
                timeout = max(timeout or 0.0, SEAL_RETRY_SECONDS)
            await client.wait(timeout)
            continue
        if batch.resync:
            snapshot = await run_in_threadpool(run.resnapshot, client)
            await _send_binary(websocket, snapshot, settings.stream_max_message_bytes)
            continue

        for reply in batch.replies:
            await websocket.send_text(reply)
        if batch.segment is not None:
            frame_bytes, send_seconds = await _send_segment(
                websocket, run, client, batch, settings
            )
            interval = _frame_interval(
                client, frame_bytes, manager.stream_count(), settings
            )
            run.hub.record_frame(
                client, batch.segment.step_count, late=send_seconds > interval
            )
            next_frame_time = (math.floor(loop.time() / interval) + 1) * interval
        for event in batch.events:
            await websocket.send_text(event)
        if batch.close is not None:
            await websocket.close(code=batch.close.code, reason=batch.close.reason)
            return batch.close.code


def _frame_interval(
    client: ClientQueue, frame_bytes: int, stream_count: int, settings: Settings
) -> float:
    """Return the seconds between two steps frames of `client`.

    The client's `max_frames_per_second` bounds the rate, and so does its even
    share of `max_stream_bytes_per_second`, given its last frame's size. The
    result is a multiple of `1 / max_frames_per_second` from a coarse ladder:
    merged frames differ in size, and the interval must not change with them,
    or clients with equal options would stop taking steps at the same moments
    (and a new grid could put two frames closer than the interval).
    """
    base = 1.0 / client.options.max_frames_per_second
    share = settings.max_stream_bytes_per_second / max(1, stream_count)
    return base * _ladder_ceil(math.ceil(frame_bytes / share / base))


def _ladder_ceil(count: int) -> int:
    """Round `count` up to 4, 5, 6, 7 or 8 times a power of two (at most 25% up)."""
    if count <= 8:
        return max(1, count)
    shift = count.bit_length() - 3  # count >> shift is in [4, 7]
    return -(-count >> shift) << shift


async def _send_segment(
    websocket: WebSocket,
    run: Run,
    client: ClientQueue,
    batch: Batch,
    settings: Settings,
) -> tuple[int, float]:
    """Encode (once per option set) and send a steps frame.

    Return its size in bytes and the seconds the sends took.
    """
    segment = batch.segment
    assert segment is not None
    options = client.options
    layers = options.frame_layers(run.hub.layer_count)
    args = (run.hub.mask_scope, options.delta_dtype, layers)
    if segment.is_encoded(options.delta_dtype, layers):
        messages = segment.messages(*args, settings.stream_max_message_bytes)
    else:
        # Encoding a large network takes milliseconds: keep it off the loop.
        messages = await run_in_threadpool(
            segment.messages, *args, settings.stream_max_message_bytes
        )
    start = asyncio.get_running_loop().time()
    for message in messages:
        await websocket.send_bytes(message)
    seconds = asyncio.get_running_loop().time() - start
    return sum(len(message) for message in messages), seconds


async def _receive_loop(
    websocket: WebSocket, run: Run, client: ClientQueue, settings: Settings
) -> int | None:
    """Apply client messages until the peer disconnects; return its close code.

    Return None after an invalid message, once the sender was asked to close
    the connection with 1008.
    """
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return int(message.get("code", status.WS_1005_NO_STATUS_RCVD))
        try:
            text = message.get("text")
            if text is None:
                raise ClientMessageError("binary messages are not accepted")
            parsed = parse_client_message(
                text, run.hub.layer_count, settings.max_frames_per_second
            )
            run.hub.handle_message(client, parsed)
        except ClientMessageError as exc:
            logger.info(
                "stream client message rejected: run_id=%s reason=%s",
                run.id,
                exc.reason,
            )
            run.hub.request_close(
                client, CLOSE_POLICY_VIOLATION, exc.reason, flush=False
            )
            return None


async def _send_binary(websocket: WebSocket, message: bytes, max_bytes: int) -> None:
    for part in split_message(message, max_bytes):
        await websocket.send_bytes(part)
