"""The WebSocket stream on a real server.

Covers the frame layout, exact zeros outside the sub-network, exact
reconstruction of the weights, and the client messages: options, step-locked
acknowledgements, float16 deltas and resync, and invalid messages.
"""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from dropviz.streaming import frames
from tests.api.helpers import StreamClient, read_weights, wait_for_status
from tests.conftest import LiveServer

# One read a second for a minute, while the run trains thousands of steps a second.
SLOW_READER_SECONDS = 60

DIGITS_64 = {"hidden_sizes": [64, 64], "input_drop_rate": 0.2, "hidden_drop_rate": 0.5}


def _assert_close(
    client_params: list[np.ndarray], server_params: list[np.ndarray]
) -> None:
    for mine, theirs in zip(client_params, server_params, strict=True):
        # Float32 additions in another order than the server's: allow a few ulps
        # of the largest weight per hundred steps.
        tolerance = 1e-5 * max(1.0, float(np.abs(theirs).max()))
        assert np.max(np.abs(mine - theirs)) <= tolerance


def _read_until_closed(client: StreamClient) -> tuple[int, str]:
    """Read until the server closes the stream; return its close code and reason."""
    with pytest.raises(ConnectionClosed) as excinfo:
        while True:
            client.receive(timeout=10)
    assert excinfo.value.rcvd is not None
    return excinfo.value.rcvd.code, excinfo.value.rcvd.reason


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


def test_one_frame_per_second_reader_stays_exact(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run = api.post("/api/runs", json={**DIGITS_64, "epochs": 10_000}).json()
    with StreamClient.open(live_server.ws_url, run["id"]) as client:
        # A reader this slow sets its frame rate. Without the option, frames
        # queued in the socket buffers delay keepalive pings past their timeout.
        client.send({"type": "options", "max_frames_per_second": 1})
        assert client.receive_event("options")["max_frames_per_second"] == 1
        api.post(f"/api/runs/{run['id']}/start")
        for _ in range(SLOW_READER_SECONDS):
            time.sleep(1.0)  # far slower than training: the server must merge
            frames_read = len(client.steps)
            while len(client.steps) == frames_read:
                client.receive()  # the epoch events in between, then one frame
        paused = api.post(f"/api/runs/{run['id']}/pause").json()
        client.receive_until_step(paused["step"])

        assert client.next_step == paused["step"]
        assert any(frame.step_count > 1 for frame in client.steps)
        covered = [
            s for f in client.steps for s in range(f.first_step, f.last_step + 1)
        ]
        assert covered == list(range(paused["step"]))
        server_weights, server_biases = read_weights(api, run["id"])
        _assert_close(client.weights, server_weights)
        _assert_close(client.biases, server_biases)


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://127.0.0.1:1", "null", "https://127.0.0.1"]
)
def test_foreign_origin_closes_with_1008(
    api: httpx.Client, live_server: LiveServer, origin: str
) -> None:
    run = api.post("/api/runs", json=DIGITS_64).json()
    with pytest.raises(ConnectionClosed) as excinfo:
        with connect(
            f"{live_server.ws_url}/ws/runs/{run['id']}",
            origin=origin,  # type: ignore[arg-type]
            open_timeout=10,
        ) as ws:
            ws.recv(timeout=10)
    assert excinfo.value.rcvd is not None
    assert excinfo.value.rcvd.code == 1008
    assert excinfo.value.rcvd.reason == "origin not allowed"


def test_own_origin_and_loopback_forms_accepted(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run = api.post("/api/runs", json=DIGITS_64).json()
    port = live_server.base_url.rsplit(":", 1)[1]
    for host in ("127.0.0.1", "localhost", "[::1]", "LOCALHOST"):
        origin = f"http://{host}:{port}"
        with StreamClient.open(live_server.ws_url, run["id"], origin=origin) as client:
            assert client.snapshot.next_step == 0


@pytest.mark.parametrize(
    "message, reason",
    [
        ("{not json", "message is not valid JSON"),
        ('{"type": "options", "colour": "red"}', "unknown key 'colour' in options"),
        ('{"type": "options", "max_frames_per_second": 0}', "[0.1, 60]"),
        (json.dumps({"type": "resync", "pad": "x" * 10_000}), "exceeds 4096 bytes"),
        (b"\x00\x01", "binary messages are not accepted"),
    ],
)
def test_invalid_client_message_closes_only_its_socket(
    api: httpx.Client, live_server: LiveServer, message: str | bytes, reason: str
) -> None:
    run = api.post("/api/runs", json=DIGITS_64).json()
    with (
        StreamClient.open(live_server.ws_url, run["id"]) as bystander,
        StreamClient.open(live_server.ws_url, run["id"]) as offender,
    ):
        offender.connection.send(message)
        code, close_reason = _read_until_closed(offender)
        assert code == 1008
        assert reason in close_reason

        api.post(f"/api/runs/{run['id']}/step")
        bystander.receive_until_step(1)
        assert api.get(f"/api/runs/{run['id']}").json()["stream_clients"] == 1


def test_options_message_confirmed_with_options_in_force(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run = api.post("/api/runs", json=DIGITS_64).json()
    with StreamClient.open(live_server.ws_url, run["id"]) as client:
        client.send({"type": "options", "max_frames_per_second": 5})
        assert client.receive_event("options") == {
            "type": "options",
            "max_frames_per_second": 5.0,
            "delta_dtype": "float32",
            "delta_layers": [0, 1, 2],
            "step_locked": False,
        }
        client.send({"type": "options", "delta_layers": [2]})
        assert client.receive_event("options")["delta_layers"] == [2]
        api.post(f"/api/runs/{run['id']}/step")
        client.receive_until_step(1)
        assert client.steps[-1].weight_deltas[0] is None
        assert client.steps[-1].weight_deltas[2] is not None


def test_step_locked_advances_one_step_per_ack(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run = api.post("/api/runs", json={**DIGITS_64, "epochs": 10_000}).json()
    with StreamClient.open(live_server.ws_url, run["id"]) as client:
        client.send({"type": "options", "step_locked": True})
        assert client.receive_event("options")["step_locked"] is True
        api.post(f"/api/runs/{run['id']}/start")
        for expected_step in range(5):
            client.receive_until_step(expected_step + 1)
            frame = client.steps[-1]
            assert (frame.first_step, frame.step_count) == (expected_step, 1)
            time.sleep(0.3)  # without an ack the run holds one step ahead
            state = api.get(f"/api/runs/{run['id']}").json()
            assert state["status"] == "running"
            assert state["step"] == expected_step + 1
            client.send({"type": "ack", "step": frame.last_step})
        client.send({"type": "options", "step_locked": False})
        client.receive_until_step(50)  # unlocked: training runs at full speed
        api.post(f"/api/runs/{run['id']}/pause")


def test_ack_for_unsent_step_closes_with_1008(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run = api.post("/api/runs", json=DIGITS_64).json()
    with StreamClient.open(live_server.ws_url, run["id"]) as client:
        client.send({"type": "ack", "step": 5})
        code, reason = _read_until_closed(client)
        assert code == 1008
        assert "ack for step 5, which was not sent" in reason


def test_float16_deltas_within_documented_error(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run = api.post("/api/runs", json=DIGITS_64).json()
    with (
        StreamClient.open(live_server.ws_url, run["id"]) as half,
        StreamClient.open(live_server.ws_url, run["id"]) as full,
    ):
        half.send({"type": "options", "delta_dtype": "float16"})
        half.receive_event("options")
        drift_bound = [np.zeros_like(w) for w in half.weights]
        for k in range(20):
            api.post(f"/api/runs/{run['id']}/step")
            half.receive_until_step(k + 1)
            full.receive_until_step(k + 1)
            got, want = half.steps[-1], full.steps[-1]
            assert got.delta_dtype == "float16"
            assert got.delta_scales is not None
            pairs = zip(got.weight_deltas, want.weight_deltas, strict=True)
            for layer, (approx, exact) in enumerate(pairs):
                assert approx is not None and exact is not None
                bound = (
                    frames.FLOAT16_RELATIVE_ERROR * np.abs(exact)
                    + frames.FLOAT16_SUBNORMAL_ERROR * got.delta_scales[2 * layer]
                )
                assert np.all(np.abs(approx - exact) <= bound)
                drift_bound[layer] += bound

        # Errors add up frame by frame, within the sum of the per-frame bounds
        # (plus float32 rounding of the additions); a resync clears them.
        server_weights, _ = read_weights(api, run["id"])
        for mine, theirs, bound in zip(
            half.weights, server_weights, drift_bound, strict=True
        ):
            assert np.all(np.abs(mine - theirs) <= bound + 1e-5)
        half.send({"type": "resync"})
        while half.snapshots < 2:
            half.receive()
        assert half.snapshot.next_step == 20
        for mine, theirs in zip(half.weights, server_weights, strict=True):
            assert np.array_equal(mine, theirs)
