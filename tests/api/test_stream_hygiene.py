"""Stream connection hygiene on a server with short keepalive pings.

The server here pings every 0.5 s and drops a peer that sent no pong within
2 s, and splits every message above 64 KiB, so a 64-128-128-10 network's
frames (about 105 KB) arrive as part frames.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.sync.client import connect

from tests.api.helpers import (
    BackgroundReader,
    StreamClient,
    raw_handshake,
    read_weights,
    wait_for_clients,
)
from tests.conftest import LiveServer, start_server, stop_server

PING_INTERVAL = 0.5
PING_TIMEOUT = 2.0
# A dropped peer is noticed one ping interval plus the timeout after it went
# quiet; the rest is slack for a loaded 2-core machine.
RELEASE_TIMEOUT = PING_INTERVAL + PING_TIMEOUT + 5.0
BODY = {"hidden_sizes": [128, 128], "epochs": 10_000}

# Connects, reads a little, then waits to be killed without a close frame.
KILLED_CLIENT = """
import sys
from websockets.sync.client import connect
with connect(sys.argv[1], max_size=None) as ws:
    ws.recv(timeout=10)
    print("reading", flush=True)
    while True:
        ws.recv()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log_path = tmp_path_factory.mktemp("hygiene") / "server.log"
    live = start_server(
        log_path,
        {
            "DROPVIZ_WS_PING_INTERVAL": str(PING_INTERVAL),
            "DROPVIZ_WS_PING_TIMEOUT": str(PING_TIMEOUT),
            "DROPVIZ_STREAM_MAX_MESSAGE_BYTES": "65536",
        },
    )
    yield live
    stop_server(live)


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
        yield client


def test_stalled_killed_and_leaving_clients_spare_others(
    api: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    run = api.post("/api/runs", json=BODY).json()
    port = int(server.base_url.rsplit(":", 1)[1])
    url = f"{server.ws_url}/ws/runs/{run['id']}"

    with (
        StreamClient.open(server.ws_url, run["id"]) as watcher,
        connect(url, max_size=None, open_timeout=10) as leaver,
    ):
        reader = BackgroundReader(watcher)
        reader.start()
        stalled = raw_handshake(port, f"/ws/runs/{run['id']}")
        killed = subprocess.Popen(
            [sys.executable, "-c", KILLED_CLIENT, url],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert killed.stdout is not None
            assert killed.stdout.readline().strip() == "reading"
            wait_for_clients(api, run["id"], 4, timeout=10)
            api.post(f"/api/runs/{run['id']}/start")

            time.sleep(0.5)  # frames flow to everyone, and pile up for `stalled`
            killed.kill()  # no close frame: the kernel resets the connection
            for _ in range(5):
                leaver.recv(timeout=10)
            leaver.close()  # a close frame while frames are still being sent
            waited = wait_for_clients(api, run["id"], 1, timeout=RELEASE_TIMEOUT)
        finally:
            killed.kill()
            killed.wait()
            if killed.stdout is not None:
                killed.stdout.close()
            stalled.close()

        paused = api.post(f"/api/runs/{run['id']}/pause").json()
        deadline = time.monotonic() + 30
        while watcher.next_step < paused["step"] and time.monotonic() < deadline:
            time.sleep(0.05)
        reader.stop()

        assert waited <= RELEASE_TIMEOUT
        assert watcher.next_step == paused["step"]  # every step arrived, once
        assert paused["step"] > 0
        weights, biases = read_weights(api, run["id"])
        for mine, theirs in zip(
            watcher.weights + watcher.biases, weights + biases, strict=True
        ):
            tolerance = 1e-5 * max(1.0, float(np.abs(theirs).max()))
            assert np.max(np.abs(mine - theirs)) <= tolerance

    log = server.log()
    assert "Traceback" not in log, log
    assert "code=1006" in log  # the killed and the stalled client


def test_large_frames_arrive_as_parts(api: httpx.Client, server: LiveServer) -> None:
    run = api.post("/api/runs", json=BODY).json()
    with connect(
        f"{server.ws_url}/ws/runs/{run['id']}", max_size=None, open_timeout=10
    ) as raw:
        first = raw.recv(timeout=10)
        assert isinstance(first, bytes)
        assert len(first) <= 65536
        assert first[6] == 3  # frame_type 3: a part
    with StreamClient.open(server.ws_url, run["id"]) as client:
        assert client.snapshot.next_step == 0
        for k in range(3):
            api.post(f"/api/runs/{run['id']}/step")
            client.receive_until_step(k + 1)
        weights, _ = read_weights(api, run["id"])
        for mine, theirs in zip(client.weights, weights, strict=True):
            assert np.allclose(mine, theirs, rtol=0, atol=1e-6)
