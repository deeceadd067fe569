"""`WS /ws/runs/{run_id}`: a snapshot, then every step (docs/protocol.md).

Each connection has two tasks: a sender that drains the client's queue and a
receiver that only notices the disconnect, so a closed tab frees its queue at
once instead of at the next send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from fastapi.concurrency import run_in_threadpool

from dropviz.config import Settings
from dropviz.runs.manager import RunManager, RunNotFoundError
from dropviz.streaming.hub import CLOSE_TRY_AGAIN_LATER, ClientQueue, CloseRequest

logger = logging.getLogger(__name__)

router = APIRouter()


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
    try:
        run = manager.get(run_id)
    except RunNotFoundError:
        await websocket.close(
            code=status.WS_1008_POLICY_VIOLATION, reason="unknown run id"
        )
        logger.info(
            "stream rejected: client=%s run_id=%s reason=unknown run id",
            client_name,
            run_id,
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
    snapshot, client = await run_in_threadpool(run.subscribe, loop)
    logger.info(
        "stream client connected: client=%s run_id=%s clients=%d",
        client_name,
        run_id,
        run.hub.client_count,
    )
    close_code = status.WS_1000_NORMAL_CLOSURE
    try:
        await websocket.send_bytes(snapshot)
        close_code = await _pump(websocket, client, settings.max_frames_per_second)
    except (WebSocketDisconnect, RuntimeError, OSError) as exc:
        # A send racing the peer's close lands here; it is a normal disconnect.
        close_code = getattr(exc, "code", status.WS_1006_ABNORMAL_CLOSURE)
    finally:
        run.hub.remove_client(client)
        logger.info(
            "stream client disconnected: client=%s run_id=%s code=%s merged_frames=%d",
            client_name,
            run_id,
            close_code,
            client.merged_frames,
        )


async def _pump(
    websocket: WebSocket, client: ClientQueue, max_frames_per_second: float
) -> int:
    """Send until the client leaves or the server closes; return the close code.

    Frames go out at most `max_frames_per_second`; steps that arrive in between
    merge into the next frame. Without the cap, a fast run fills the socket
    buffers with single-step frames and the page shows seconds-old steps.
    """
    receiver = asyncio.create_task(_wait_for_disconnect(websocket))
    interval = 1.0 / max_frames_per_second
    next_send = 0.0
    try:
        while True:
            delay = next_send - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.wait({receiver}, timeout=delay)
                if receiver.done():
                    return receiver.result()
            getter = asyncio.create_task(client.next_messages())
            done, _ = await asyncio.wait(
                {getter, receiver}, return_when=asyncio.FIRST_COMPLETED
            )
            if receiver in done:
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
                return receiver.result()
            messages = getter.result()
            if isinstance(messages, CloseRequest):
                await websocket.close(code=messages.code, reason=messages.reason)
                return messages.code
            for message in messages:
                if isinstance(message, bytes):
                    await websocket.send_bytes(message)
                    next_send = asyncio.get_running_loop().time() + interval
                else:
                    await websocket.send_text(message)
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver


async def _wait_for_disconnect(websocket: WebSocket) -> int:
    # Version 1 of the protocol ignores what the client sends.
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return int(message.get("code", status.WS_1000_NORMAL_CLOSURE))
