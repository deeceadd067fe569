"""Replay, playback, metrics CSV, export and import on a real server."""

from __future__ import annotations

import base64
import csv
import io
import zipfile

import httpx
import numpy as np
import pytest

from dropviz.training.config import TrainConfig
from dropviz.training.trainer import Trainer
from tests.api.helpers import StreamClient, wait_for_status
from tests.conftest import LiveServer

# 1,347 training images in batches of 8: 169 steps in the one epoch.
DIGITS = {"hidden_sizes": [64, 64], "epochs": 1, "seed": 11}


def _reference(body: dict, step_count: int) -> Trainer:
    values = {**body, "hidden_sizes": tuple(body["hidden_sizes"])}
    trainer = Trainer(TrainConfig(**values))  # type: ignore[arg-type]
    for _ in range(step_count):
        trainer.step()
    return trainer


def _step(api: httpx.Client, run_id: str, step: int, weights: bool = False) -> dict:
    response = api.get(
        f"/api/runs/{run_id}/steps/{step}", params={"weights": str(weights).lower()}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_replay_step_matches_live_stream_and_trainer(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run = api.post("/api/runs", json=DIGITS).json()
    with StreamClient.open(live_server.ws_url, run["id"]) as client:
        api.post(f"/api/runs/{run['id']}/start")
        client.receive_until_step(run["total_steps"])
    wait_for_status(api, run["id"], {"finished"})
    streamed = {}
    for frame in client.steps:
        for offset, masks in enumerate(frame.masks):
            streamed[frame.first_step + offset] = (masks, frame.losses[offset])

    replayed = _step(api, run["id"], 137, weights=True)
    assert replayed["step"] == 137
    assert replayed["mask_scope"] == "per-step"
    live_masks, live_loss = streamed[137]
    for layer, mask in enumerate(live_masks):
        assert replayed["masks"][layer] == [mask.tolist()]
    assert replayed["loss"] == float(live_loss)

    reference = _reference(DIGITS, 138)  # the weights right after step 137
    for layer, weight in enumerate(reference.params.weights):
        replayed_weight = np.array(replayed["weights"][layer], dtype=np.float32)
        assert replayed_weight.tobytes() == weight.tobytes()
    for layer, bias in enumerate(reference.params.biases):
        replayed_bias = np.array(replayed["biases"][layer], dtype=np.float32)
        assert replayed_bias.tobytes() == bias.tobytes()


def test_step_range_returns_packed_masks(api: httpx.Client) -> None:
    run = api.post("/api/runs", json=DIGITS).json()
    for _ in range(30):
        api.post(f"/api/runs/{run['id']}/step")
    response = api.get(f"/api/runs/{run['id']}/steps", params={"first": 5, "count": 50})
    assert response.status_code == 200, response.text
    playback = response.json()
    assert playback["first_step"] == 5
    assert playback["step_count"] == 25  # cut at the 30 recorded steps
    assert playback["next_step"] is None
    assert playback["layer_sizes"] == [64, 64, 64, 10]

    single = _step(api, run["id"], 12)
    packed = np.frombuffer(base64.b64decode(playback["masks"][7]), np.uint8)
    unpacked = np.unpackbits(packed[:8], count=64, bitorder="little").astype(bool)
    assert unpacked.tolist() == single["masks"][0][0]
    assert playback["losses"][7] == single["loss"]


def test_unrecorded_step_returns_404(api: httpx.Client) -> None:
    run = api.post("/api/runs", json=DIGITS).json()
    response = api.get(f"/api/runs/{run['id']}/steps/0")
    assert response.status_code == 404
    assert "no steps yet" in response.json()["detail"]
    api.post(f"/api/runs/{run['id']}/step")
    response = api.get(f"/api/runs/{run['id']}/steps/1")
    assert response.status_code == 404
    assert "0..0" in response.json()["detail"]


def test_negative_step_returns_422(api: httpx.Client) -> None:
    run = api.post("/api/runs", json=DIGITS).json()
    api.post(f"/api/runs/{run['id']}/step")
    response = api.get(f"/api/runs/{run['id']}/steps/-1")
    assert response.status_code == 422
    assert "step" in response.text
    assert "-1" in response.text


def test_metrics_csv_lists_epochs(api: httpx.Client) -> None:
    body = {"dataset": "moons", "n_samples": 100, "hidden_sizes": [8], "epochs": 3}
    run = api.post("/api/runs", json=body).json()
    api.post(f"/api/runs/{run['id']}/start")
    wait_for_status(api, run["id"], {"finished"})
    response = api.get(f"/api/runs/{run['id']}/metrics.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert 0.0 <= float(rows[-1]["test_accuracy"]) <= 1.0


@pytest.mark.parametrize("finish", [True, False])
def test_export_delete_import_replays_identically(
    api: httpx.Client, finish: bool
) -> None:
    body = {**DIGITS, "optimizer": "momentum", "seed": 21}
    run = api.post("/api/runs", json=body).json()
    if finish:
        api.post(f"/api/runs/{run['id']}/start")
        wait_for_status(api, run["id"], {"finished"})
    else:
        for _ in range(60):
            api.post(f"/api/runs/{run['id']}/step")
    steps = [0, 59, 137, 168] if finish else [0, 31, 59]
    original = {step: _step(api, run["id"], step, weights=True) for step in steps}

    exported = api.get(f"/api/runs/{run['id']}/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(exported.content)).namelist()
    assert {"run.json", "metrics.csv", "steps.bin", "weights.npz"} <= set(names)
    assert api.delete(f"/api/runs/{run['id']}").status_code == 204

    response = api.post(
        "/api/runs/import",
        content=exported.content,
        headers={"content-type": "application/zip"},
    )
    assert response.status_code == 201, response.text
    imported = response.json()
    assert imported["id"] != run["id"]
    assert imported["status"] == ("finished" if finish else "paused")
    assert imported["step"] == (run["total_steps"] if finish else 60)
    for step in steps:
        assert _step(api, imported["id"], step, weights=True) == original[step]

    if not finish:  # the imported run trains on exactly as the original would
        api.post(f"/api/runs/{imported['id']}/step")
        reference = _reference(body, 61)
        weights = api.get(f"/api/runs/{imported['id']}/weights")
        archive = np.load(io.BytesIO(weights.content))
        assert archive["W0"].tobytes() == reference.params.weights[0].tobytes()


def test_import_rejects_bad_archives(api: httpx.Client) -> None:
    headers = {"content-type": "application/zip"}
    response = api.post("/api/runs/import", content=b"not a zip", headers=headers)
    assert response.status_code == 422
    assert "not a zip file" in response.json()["detail"]

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil.txt", "x")
    response = api.post("/api/runs/import", content=buffer.getvalue(), headers=headers)
    assert response.status_code == 422
    assert "unexpected member" in response.json()["detail"]

    response = api.post(
        "/api/runs/import", content=b"{}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 415


def test_import_tampered_steps_rejected(api: httpx.Client) -> None:
    run = api.post("/api/runs", json=DIGITS).json()
    for _ in range(10):
        api.post(f"/api/runs/{run['id']}/step")
    exported = zipfile.ZipFile(
        io.BytesIO(api.get(f"/api/runs/{run['id']}/export").content)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in exported.namelist():
            data = exported.read(name)
            if name.startswith("checkpoints/"):
                continue  # force the import to re-run every step
            if name == "steps.bin":
                data = data[:-1] + bytes([data[-1] ^ 0xFF])  # flip one mask byte
            archive.writestr(name, data)
    response = api.post(
        "/api/runs/import",
        content=buffer.getvalue(),
        headers={"content-type": "application/zip"},
    )
    assert response.status_code == 422, response.text
    assert "cannot be restored" in response.json()["detail"]
