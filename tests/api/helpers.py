"""Helpers for tests that talk to the live server over HTTP and WebSocket."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from dropviz.streaming import frames


def wait_for_status(
    api: httpx.Client, run_id: str, statuses: set[str], timeout: float = 60.0
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"/api/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        time.sleep(0.05)
    raise AssertionError(
        f"run {run_id} did not reach {statuses} within {timeout} s: {run}"
    )


def read_weights(
    api: httpx.Client, run_id: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    response = api.get(f"/api/runs/{run_id}/weights")
    assert response.status_code == 200
    archive = np.load(io.BytesIO(response.content))
    n_layers = len(archive["layer_sizes"]) - 1
    return [archive[f"W{layer}"] for layer in range(n_layers)], [
        archive[f"b{layer}"] for layer in range(n_layers)
    ]


@dataclass
class StreamClient:
    """A stream reader that keeps its own copy of the weights, as the page does.

    It joins part frames, checks that frames cover every step once and in
    order, and adds each frame's deltas to its weights.
    """

    connection: ClientConnection
    snapshot: frames.SnapshotFrame
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    steps: list[frames.StepsFrame] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    snapshots: int = 1
    assembler: frames.PartAssembler = field(default_factory=frames.PartAssembler)

    @classmethod
    @contextmanager
    def open(
        cls, ws_url: str, run_id: str, origin: str | None = None
    ) -> Iterator[StreamClient]:
        with connect(
            f"{ws_url}/ws/runs/{run_id}",
            max_size=None,
            open_timeout=10,
            origin=origin,  # type: ignore[arg-type]
        ) as connection:
            assembler = frames.PartAssembler()
            snapshot = None
            while snapshot is None:
                snapshot = _whole_message(assembler, connection.recv(timeout=10))
            decoded = frames.decode_snapshot(snapshot)
            yield cls(
                connection,
                decoded,
                [w.copy() for w in decoded.weights],
                [b.copy() for b in decoded.biases],
                assembler=assembler,
            )

    @property
    def layer_sizes(self) -> list[int]:
        return list(self.snapshot.meta["layer_sizes"])

    @property
    def next_step(self) -> int:
        if self.steps and self.steps[-1].first_step >= self.snapshot.next_step:
            return self.steps[-1].last_step + 1
        return self.snapshot.next_step

    def send(self, message: dict) -> None:
        self.connection.send(json.dumps(message))

    def receive(self, timeout: float = 10.0) -> None:
        """Receive one message; a part frame counts once its message is whole."""
        message = self.connection.recv(timeout=timeout)
        if isinstance(message, str):
            self.events.append(message)
            return
        whole = _whole_message(self.assembler, message)
        if whole is None:
            return
        if frames.frame_type(whole) == frames.FRAME_SNAPSHOT:
            self.snapshot = frames.decode_snapshot(whole)
            self.weights = [w.copy() for w in self.snapshot.weights]
            self.biases = [b.copy() for b in self.snapshot.biases]
            self.snapshots += 1
            return
        frame = frames.decode_steps(whole, self.layer_sizes)
        assert frame.first_step == self.next_step, (
            "frames must cover every step once, in order"
        )
        self.steps.append(frame)
        for layer, (weight_delta, bias_delta) in enumerate(
            zip(frame.weight_deltas, frame.bias_deltas, strict=True)
        ):
            if weight_delta is not None and bias_delta is not None:
                self.weights[layer] += weight_delta
                self.biases[layer] += bias_delta

    def receive_until_step(self, step_count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.next_step < step_count:
            self.receive(timeout=max(0.1, deadline - time.monotonic()))

    def receive_event(self, kind: str, timeout: float = 10.0) -> dict:
        """Receive until a JSON message of type `kind` arrives; return it."""
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while True:
            for text in self.events[seen:]:
                event = json.loads(text)
                if event["type"] == kind:
                    return event
            seen = len(self.events)
            self.receive(timeout=max(0.1, deadline - time.monotonic()))


def _whole_message(
    assembler: frames.PartAssembler, message: bytes | str
) -> bytes | None:
    assert isinstance(message, bytes), "expected a binary message"
    if frames.frame_type(message) == frames.FRAME_PART:
        return assembler.add(message)
    return message


class BackgroundReader(threading.Thread):
    """Reads a StreamClient on its own thread until the stream closes or `stop()`.

    Reading continuously keeps the client's keepalive pongs flowing.
    """

    def __init__(self, client: StreamClient) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.close_code: int | None = None
        self.error: BaseException | None = None
        self._stop_requested = threading.Event()

    def run(self) -> None:
        while not self._stop_requested.is_set():
            try:
                self.client.receive(timeout=0.2)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                self.close_code = exc.rcvd.code if exc.rcvd is not None else None
                return
            except BaseException as exc:  # reported by the test through `error`
                self.error = exc
                return

    def stop(self) -> None:
        self._stop_requested.set()
        self.join(timeout=10)
        assert self.error is None, repr(self.error)


def raw_handshake(port: int, path: str, receive_buffer: int = 4096) -> socket.socket:
    """Open a WebSocket with a plain socket that will never read or reply to pings."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def wait_for_clients(
    api: httpx.Client, run_id: str, expected: int, timeout: float
) -> float:
    """Wait until the run has `expected` open streams; return the seconds it took."""
    start = time.monotonic()
    while True:
        count = api.get(f"/api/runs/{run_id}").json()["stream_clients"]
        if count == expected:
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, (
            f"run {run_id} has {count} streams after {timeout} s; expected {expected}"
        )
        time.sleep(0.05)
