"""Shared fixtures: a real dropviz server on 127.0.0.1 in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from threadpoolctl import threadpool_limits

from tests.idx_files import write_mnist_folder

# One BLAS thread in the test process too, as the server uses: on a 2-core
# machine a second thread competes with the server under test.
threadpool_limits(limits=1)

SERVER_START_TIMEOUT = 30.0  # seconds; importing scikit-learn dominates


@dataclass
class LiveServer:
    base_url: str
    ws_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: BinaryIO

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    log_path: Path, extra_env: dict[str, str] | None = None, port: int | None = None
) -> LiveServer:
    """Start `python -m dropviz serve` and wait for /api/health.

    The server listens on `port`, or on a free port when it is None; a test
    that restarts a server passes the old server's port.
    """
    port = free_port() if port is None else port
    # Never the user's own state folder: a fresh one beside the log by default.
    env = {
        **os.environ,
        "DROPVIZ_STATE_DIR": str(log_path.parent / "state"),
        **(extra_env or {}),
    }
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dropviz", "serve", "--port", str(port)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_file.close()
            raise RuntimeError(
                f"server exited with {process.returncode}:\n{log_path.read_text()}"
            )
        try:
            if httpx.get(f"{base_url}/api/health", timeout=1.0).status_code == 200:
                return LiveServer(
                    base_url, f"ws://127.0.0.1:{port}", process, log_path, log_file
                )
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    process.wait()
    log_file.close()
    raise RuntimeError(
        f"server did not answer within {SERVER_START_TIMEOUT} s:\n"
        + log_path.read_text()
    )


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    server.log_file.close()


@contextmanager
def serve(
    log_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """Start a server as `start_server` does and stop it when the block exits.

    After a block that exits without an exception, the server's log must
    contain no Python traceback.
    """
    server = start_server(log_path, extra_env)
    try:
        yield server
    finally:
        stop_server(server)
    assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="session")
def idx_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The live server's DROPVIZ_DATA_DIR: a small mnist/ set, no fashion-mnist/.

    The MNIST-shaped set has 200 training and 50 test images of 28x28 pixels.
    """
    data_dir = tmp_path_factory.mktemp("data")
    write_mnist_folder(data_dir / "mnist", n_train=200, n_test=50, compress=True)
    return data_dir


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, idx_data_dir: Path
) -> Iterator[LiveServer]:
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with serve(log_path, {"DROPVIZ_DATA_DIR": str(idx_data_dir)}) as server:
        yield server


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=30.0) as client:
        yield client
