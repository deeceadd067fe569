"""Helpers for tests that talk to the live server over HTTP and WebSocket."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import numpy as np
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
    """A stream reader that keeps its own copy of the weights, as the page does."""

    connection: ClientConnection
    snapshot: frames.SnapshotFrame
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    steps: list[frames.StepsFrame] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @classmethod
    @contextmanager
    def open(cls, ws_url: str, run_id: str) -> Iterator[StreamClient]:
        with connect(
            f"{ws_url}/ws/runs/{run_id}", max_size=None, open_timeout=10
        ) as connection:
            snapshot = frames.decode_snapshot(connection.recv(timeout=10))
            yield cls(
                connection,
                snapshot,
                [w.copy() for w in snapshot.weights],
                [b.copy() for b in snapshot.biases],
            )

    @property
    def layer_sizes(self) -> list[int]:
        return list(self.snapshot.meta["layer_sizes"])

    @property
    def next_step(self) -> int:
        return self.steps[-1].last_step + 1 if self.steps else self.snapshot.next_step

    def receive(self, timeout: float = 10.0) -> None:
        message = self.connection.recv(timeout=timeout)
        if isinstance(message, str):
            self.events.append(message)
            return
        frame = frames.decode_steps(message, self.layer_sizes)
        assert frame.first_step == self.next_step, (
            "frames must cover every step once, in order"
        )
        self.steps.append(frame)
        for layer, (weight_delta, bias_delta) in enumerate(
            zip(frame.weight_deltas, frame.bias_deltas, strict=True)
        ):
            assert weight_delta is not None and bias_delta is not None
            self.weights[layer] += weight_delta
            self.biases[layer] += bias_delta

    def receive_until_step(self, step_count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.next_step < step_count:
            self.receive(timeout=max(0.1, deadline - time.monotonic()))
