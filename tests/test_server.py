"""Server shutdown on signals, with streams open, on a real server process."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.api.helpers import (
    BackgroundReader,
    StreamClient,
    raw_handshake,
    wait_for_clients,
    wait_for_status,
)
from tests.conftest import start_server, stop_server

EXIT_TIMEOUT = 5.0  # seconds a signalled server may take to exit
BODY = {"hidden_sizes": [128, 128], "epochs": 10_000}


def test_sigterm_closes_streams_with_1001_and_halts_run(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server.log")
    try:
        with contextlib.ExitStack() as stack:
            api = stack.enter_context(httpx.Client(base_url=server.base_url))
            run = api.post("/api/runs", json=BODY).json()
            clients = [
                stack.enter_context(StreamClient.open(server.ws_url, run["id"]))
                for _ in range(3)
            ]
            readers = [BackgroundReader(client) for client in clients]
            for reader in readers:
                reader.start()
            api.post(f"/api/runs/{run['id']}/start")
            while api.get(f"/api/runs/{run['id']}").json()["step"] < 50:
                time.sleep(0.05)

            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=EXIT_TIMEOUT + 5)
            exit_seconds = time.monotonic() - signalled
            for reader in readers:
                reader.join(timeout=10)

        assert exit_seconds < EXIT_TIMEOUT
        log = server.log()
        for reader in readers:
            assert reader.error is None, repr(reader.error)
            assert reader.close_code == 1001
        statuses = [json.loads(e) for e in clients[0].events if '"type":"status"' in e]
        # A stored run halted by shutdown comes back as interrupted, resumable
        # from a checkpoint of this exact step.
        assert statuses[-1]["status"] == "interrupted"
        paused_step = statuses[-1]["step"]
        assert f"run interrupted: run_id={run['id']} step={paused_step}" in log
        for client in clients:
            assert client.next_step == paused_step  # every step sent before 1001
        assert "Traceback" not in log, log
    finally:
        stop_server(server)


def test_second_sigint_exits_at_once(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.base_url) as api:
            run = api.post("/api/runs", json=BODY).json()
            port = int(server.base_url.rsplit(":", 1)[1])
            stalled = raw_handshake(port, f"/ws/runs/{run['id']}")
            wait_for_clients(api, run["id"], 1, timeout=10)
            api.post(f"/api/runs/{run['id']}/start")
            wait_for_status(api, run["id"], {"running"})
            time.sleep(1.0)  # the stalled client's buffers fill up

        # The stalled stream cannot take its close frame, so the first
        # shutdown waits for it; the second signal cuts that short.
        server.process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert server.process.poll() is None
        server.process.send_signal(signal.SIGINT)
        server.process.wait(timeout=2)
        stalled.close()

        assert server.process.returncode == 128 + signal.SIGINT
        assert "second SIGINT: exiting at once" in server.log()
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            stop_server(server)
