"""The uvicorn server behind `dropviz serve`, with pinned WebSocket settings.

On SIGINT or SIGTERM it closes every stream with 1001 (going away) and exits
within 5 seconds. Two behaviours of uvicorn 0.55 (read in its source:
`server.py` and `protocols/websockets/websockets_sansio_impl.py`) are changed
here:

- On SIGINT or SIGTERM, `Server.shutdown` closes every open WebSocket with
  1012 (service restart) before the app's lifespan shutdown runs.
  `DashboardServer` first stops accepting, pauses the runs and lets each
  stream send what it has pending and close with 1001, then hands over to
  uvicorn. A second signal exits at once.
- On a keepalive ping timeout the protocol calls `transport.close()`, which
  waits for the write buffer to drain. A peer that stopped reading never
  drains it, so its connection and stream task would stay forever.
  `StreamProtocol` aborts the connection instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import (
    WebSocketsSansIOProtocol,
)

from dropviz.config import Settings
from dropviz.memory import configure_malloc
from dropviz.runs.manager import RunManager

logger = logging.getLogger(__name__)

STREAM_CLOSE_SECONDS = 2.0  # streams get this long to flush and close with 1001
# uvicorn then waits this long for the connections left before cancelling them.
GRACEFUL_SHUTDOWN_SECONDS = 1
# Two malloc arenas serve the event loop, the trainers and the thread pool
# with little lock contention, and keep freed memory reusable by all of them.
MALLOC_ARENAS = 2
# Blocks from 1 MiB up get pages of their own, returned when freed: over 300 s
# with seven stalled clients dropped, RSS peaked 25 MB above its start instead
# of 46 MB. NOTE: a dense step of a layer over 1 MiB (momentum or Adam on
# 784-512) then maps its copy of the weights anew on every step.
MALLOC_MMAP_THRESHOLD_BYTES = 1 << 20
# A thread that waits for the GIL gets it after at most this long; Python's
# default is 5 ms. Training holds the GIL between its numpy calls, and a REST
# read passes it several times. In four paired runs of bench/stream_load.py,
# the p99 of GET /api/runs/{id} was 11 to 68 ms with 1 ms against 32 to
# 180 ms with 5 ms.
GIL_SWITCH_SECONDS = 0.001


class StreamProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, aborting connections that stopped.

    NOTE: overrides `keepalive_timeout`, the `close_timer` attribute and the
    private `uvicorn._types` of uvicorn's protocol, internals checked against
    uvicorn 0.55.0; tests/api/test_stream_hygiene.py fails if they change.
    """

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self.transport.abort()

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        # After our close frame uvicorn waits for the peer's reply, then calls
        # transport.close(), which never finishes for a peer that stopped reading.
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = self.loop.call_later(
                self.close_timeout, self.transport.abort
            )


class DashboardServer(uvicorn.Server):
    """A uvicorn server that closes the dashboard's streams before its own shutdown."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            # The first signal's shutdown is still running: stop now.
            logger.warning("second %s: exiting at once", signal.Signals(sig).name)
            logging.shutdown()
            os._exit(128 + sig)
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        start = time.monotonic()
        for server in getattr(self, "servers", []):
            server.close()  # stop accepting; uvicorn closes them again, harmlessly
        manager: RunManager = self.app.state.runs
        await asyncio.to_thread(manager.shutdown)
        closed = await _wait_for_streams(manager, STREAM_CLOSE_SECONDS)
        logger.info(
            "streams closed for shutdown: open_streams=%d seconds=%.2f",
            manager.stream_count(),
            time.monotonic() - start,
        )
        if not closed:
            logger.warning(
                "streams still open after %.1f s; uvicorn closes them with 1012",
                STREAM_CLOSE_SECONDS,
            )
        await super().shutdown(sockets)


async def _wait_for_streams(manager: RunManager, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while manager.stream_count() > 0:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def build_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    """Return the uvicorn configuration, with every WebSocket setting pinned."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws=StreamProtocol,
        # Per-message deflate cuts the rate of large binary frames about fifty-fold.
        ws_per_message_deflate=False,
        ws_max_size=settings.ws_max_size,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def run_server(app: FastAPI, settings: Settings) -> None:
    """Serve `app` until SIGINT or SIGTERM."""
    configure_malloc(MALLOC_ARENAS, MALLOC_MMAP_THRESHOLD_BYTES)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    server = DashboardServer(build_config(app, settings), app)
    try:
        server.run()
    except KeyboardInterrupt:
        # uvicorn raises the captured SIGINT again once it has shut down.
        pass
    if not server.started:
        sys.exit(1)
