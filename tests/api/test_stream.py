"""The WebSocket stream on a real server: layout, exact zeros, exact reconstruction."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.api.helpers import StreamClient, read_weights, wait_for_status
from tests.conftest import LiveServer

DIGITS_64 = {"hidden_sizes": [64, 64], "input_drop_rate": 0.2, "hidden_drop_rate": 0.5}


def _assert_close(
    client_params: list[np.ndarray], server_params: list[np.ndarray]
) -> None:
    for mine, theirs in zip(client_params, server_params, strict=True):
        # Float32 additions in another order than the server's: allow a few ulps
        # of the largest weight per hundred steps.
        tolerance = 1e-5 * max(1.0, float(np.abs(theirs).max()))
        assert np.max(np.abs(mine - theirs)) <= tolerance


def test_stepped_run_streams_exact_sub_network_deltas(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run = api.post("/api/runs", json=DIGITS_64).json()
    with StreamClient.open(live_server.ws_url, run["id"]) as client:
        assert client.snapshot.next_step == 0
        assert client.layer_sizes == [64, 64, 64, 10]
        assert client.snapshot.meta["input_shape"] == [8, 8]
        for k in range(100):
            assert api.post(f"/api/runs/{run['id']}/step").status_code == 200
            client.receive_until_step(k + 1)
        assert client.next_step == 100

        moved_inside = 0
        for frame in client.steps:
            assert frame.step_count == 1
            masks = frame.masks[0]
            for layer, weight_delta in enumerate(frame.weight_deltas):
                assert weight_delta is not None
                source_kept = masks[layer]
                assert np.all(weight_delta[~source_kept, :] == 0.0)
                if layer + 1 < len(masks):
                    assert np.all(weight_delta[:, ~masks[layer + 1]] == 0.0)
                    assert np.all(frame.bias_deltas[layer][~masks[layer + 1]] == 0.0)
                    inside = weight_delta[np.ix_(source_kept, masks[layer + 1])]
                else:
                    inside = weight_delta[source_kept, :]
                moved_inside += int(np.any(inside != 0.0))
        assert moved_inside == 100 * 3  # every layer of every step moved somewhere

        server_weights, server_biases = read_weights(api, run["id"])
        _assert_close(client.weights, server_weights)
        _assert_close(client.biases, server_biases)


def test_full_speed_slow_reader_gets_merged_exact_frames(
    api: httpx.Client, live_server: LiveServer
) -> None:
    body = {**DIGITS_64, "epochs": 8}
    run = api.post("/api/runs", json=body).json()
    with StreamClient.open(live_server.ws_url, run["id"]) as client:
        api.post(f"/api/runs/{run['id']}/start")
        while client.next_step < run["total_steps"]:
            time.sleep(0.02)  # a reader slower than training: the server merges
            client.receive()
        final = wait_for_status(api, run["id"], {"finished"})
        assert client.next_step == final["step"]
        assert any(frame.step_count > 1 for frame in client.steps)
        assert sum(frame.step_count for frame in client.steps) == final["step"]
        server_weights, server_biases = read_weights(api, run["id"])
        _assert_close(client.weights, server_weights)
        _assert_close(client.biases, server_biases)


def test_client_joining_mid_run_continues_from_snapshot(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run = api.post("/api/runs", json=DIGITS_64).json()
    for _ in range(10):
        api.post(f"/api/runs/{run['id']}/step")
    with StreamClient.open(live_server.ws_url, run["id"]) as client:
        assert client.snapshot.next_step == 10
        for _ in range(5):
            api.post(f"/api/runs/{run['id']}/step")
        client.receive_until_step(15)
        server_weights, _ = read_weights(api, run["id"])
        _assert_close(client.weights, server_weights)


def test_different_seeds_stream_different_masks(
    api: httpx.Client, live_server: LiveServer
) -> None:
    first_masks = []
    for seed in (1, 2):
        run = api.post("/api/runs", json={**DIGITS_64, "seed": seed}).json()
        with StreamClient.open(live_server.ws_url, run["id"]) as client:
            api.post(f"/api/runs/{run['id']}/step")
            client.receive_until_step(1)
            first_masks.append(client.steps[0].masks[0])
    assert any(not np.array_equal(a, b) for a, b in zip(*first_masks, strict=True))


def test_status_and_epoch_events_arrive_as_json(
    api: httpx.Client, live_server: LiveServer
) -> None:
    body = {
        "dataset": "moons",
        "n_samples": 100,
        "hidden_sizes": [8],
        "batch_size": 25,
        "epochs": 2,
    }
    run = api.post("/api/runs", json=body).json()
    with StreamClient.open(live_server.ws_url, run["id"]) as client:
        api.post(f"/api/runs/{run['id']}/start")
        wait_for_status(api, run["id"], {"finished"})
        deadline = time.monotonic() + 10
        while (
            not any('"finished"' in e for e in client.events)
            and time.monotonic() < deadline
        ):
            client.receive()
        kinds = [e for e in client.events if '"type":"epoch"' in e]
        assert len(kinds) == 2
        assert any('"status":"running"' in e for e in client.events)
        assert any('"status":"finished"' in e for e in client.events)


def test_unknown_run_stream_closes_with_1008(live_server: LiveServer) -> None:
    with pytest.raises(ConnectionClosed) as excinfo:
        with connect(f"{live_server.ws_url}/ws/runs/nosuchrun", open_timeout=10) as ws:
            ws.recv(timeout=10)
    assert excinfo.value.rcvd is not None
    assert excinfo.value.rcvd.code == 1008


def test_deleting_run_closes_its_streams(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run = api.post("/api/runs", json=DIGITS_64).json()
    with StreamClient.open(live_server.ws_url, run["id"]) as client:
        assert api.delete(f"/api/runs/{run['id']}").status_code == 204
        with pytest.raises(ConnectionClosed) as excinfo:
            while True:
                client.receive(timeout=10)
    assert excinfo.value.rcvd is not None
    assert excinfo.value.rcvd.code == 1000
