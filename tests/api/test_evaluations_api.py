"""Evaluation jobs through the REST API and the stream, on a real server."""

from __future__ import annotations

import json
import time

import httpx

from tests.api.helpers import StreamClient
from tests.conftest import LiveServer

SMALL = {"hidden_sizes": [12], "input_drop_rate": 0.0, "hidden_drop_rate": 0.5}


def _trained_run(api: httpx.Client, body: dict, steps: int = 30) -> str:
    run_id = api.post("/api/runs", json=body).json()["id"]
    for _ in range(steps):
        api.post(f"/api/runs/{run_id}/step")
    return run_id


def test_mc_evaluation_returns_curve(api: httpx.Client) -> None:
    run_id = _trained_run(api, SMALL)
    response = api.post(
        f"/api/runs/{run_id}/evaluate", json={"rule": "mc", "ks": [5, 1], "repeats": 3}
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "done"
    assert job["step"] == 30
    result = job["result"]
    assert result["mc"]["ks"] == [1, 5]
    for name in ("arithmetic", "geometric"):
        assert len(result["mc"][name]["error_mean"]) == 2
        assert len(result["mc"][name]["error_std"]) == 2
        final = result["mc"][name]["final"]
        assert len(final["predicted"]) == result["n_examples"] == 450
    ws = result["weight_scaling"]
    assert ws["agreement_with_weight_scaling"] == 1.0
    assert abs(ws["error"] + ws["accuracy"] - 1.0) < 1e-12
    assert result["note"] is None


def test_exact_evaluation_on_twelve_units(api: httpx.Client) -> None:
    run_id = _trained_run(api, SMALL)
    response = api.post(f"/api/runs/{run_id}/evaluate", json={"rule": "exact"})
    assert response.status_code == 200, response.text
    exact = response.json()["result"]["exact"]
    assert exact["layers"] == [1]
    assert exact["n_masks"] == 2**12
    # One dropout layer feeding the softmax linearly: the normalized geometric
    # mean is the weight-scaled network, so every prediction agrees.
    assert exact["geometric"]["agreement_with_weight_scaling"] == 1.0
    assert exact["unnormalized_geometric_total"] < 1.0


def test_exact_evaluation_too_many_units_returns_422(api: httpx.Client) -> None:
    run_id = api.post("/api/runs", json={}).json()["id"]
    response = api.post(f"/api/runs/{run_id}/evaluate", json={"rule": "exact"})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "layers"]
    assert "at most 16" in detail["msg"]


def test_invalid_evaluation_body_returns_422(api: httpx.Client) -> None:
    run_id = api.post("/api/runs", json=SMALL).json()["id"]
    for body, field in [
        ({"rule": "bayes"}, "rule"),
        ({"ks": [0]}, "ks"),
        ({"repeats": 1000}, "repeats"),
        ({"wait_seconds": float("inf")}, "wait_seconds"),
    ]:
        response = api.post(
            f"/api/runs/{run_id}/evaluate",
            content=json.dumps(body),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, body
        assert any(field in error["loc"] for error in response.json()["detail"])


def test_long_evaluation_returns_202_and_cancels(api: httpx.Client) -> None:
    run_id = _trained_run(api, {"hidden_sizes": [256, 256]}, steps=5)
    response = api.post(
        f"/api/runs/{run_id}/evaluate",
        json={"rule": "mc", "ks": [1000], "repeats": 50, "wait_seconds": 0},
    )
    assert response.status_code == 202
    job_id = response.json()["id"]
    polled = api.get(f"/api/runs/{run_id}/evaluations/{job_id}").json()
    assert polled["status"] == "running"
    cancelled = api.delete(f"/api/runs/{run_id}/evaluations/{job_id}").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["result"] is None
    listed = api.get(f"/api/runs/{run_id}/evaluations").json()
    assert [job["id"] for job in listed] == [job_id]


def test_unknown_evaluation_returns_404(api: httpx.Client) -> None:
    run_id = api.post("/api/runs", json=SMALL).json()["id"]
    response = api.get(f"/api/runs/{run_id}/evaluations/nosuchjob")
    assert response.status_code == 404
    assert "nosuchjob" in response.json()["detail"]


def test_evaluation_progress_arrives_on_stream(
    api: httpx.Client, live_server: LiveServer
) -> None:
    run_id = _trained_run(api, SMALL, steps=3)
    with StreamClient.open(live_server.ws_url, run_id) as client:
        api.post(f"/api/runs/{run_id}/evaluate", json={"rule": "mc", "ks": [20]})
        deadline = time.monotonic() + 20
        events: list[dict] = []
        while time.monotonic() < deadline and not any(
            e.get("status") == "done" for e in events
        ):
            client.receive(timeout=20)
            events = [json.loads(e) for e in client.events]
            events = [e for e in events if e["type"] == "evaluation"]
        assert events[-1]["status"] == "done"
        assert events[-1]["progress"] == 1.0


def test_exact_evaluation_without_layers_returns_422(api: httpx.Client) -> None:
    no_dropout = {"hidden_sizes": [8], "input_drop_rate": 0.0, "hidden_drop_rate": 0.0}
    for body, run_body in [
        ({"rule": "exact", "layers": []}, SMALL),
        ({"rule": "exact"}, no_dropout),
    ]:
        run_id = api.post("/api/runs", json=run_body).json()["id"]
        response = api.post(f"/api/runs/{run_id}/evaluate", json=body)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"][0]
        assert "layers" in detail["loc"]
        assert detail["msg"].startswith("layers")


def test_predict_grid_on_moons(api: httpx.Client) -> None:
    body = {"dataset": "moons", "n_samples": 200, "hidden_sizes": [16, 16]}
    run_id = _trained_run(api, body, steps=40)
    response = api.post(
        f"/api/runs/{run_id}/predict", json={"grid": 10, "k": 20, "subnetworks": 2}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["n_points"] == 100
    assert len(result["grid"]["x"]) == len(result["grid"]["y"]) == 10
    assert len(result["weight_scaling"]) == 100
    assert all(abs(sum(row) - 1.0) < 1e-4 for row in result["mc"]["mean"])
    assert len(result["mc"]["entropy"]) == 100
    assert min(result["mc"]["variance"]) >= 0.0
    sources = [member["source"] for member in result["subnetworks"]]
    assert sources == ["last_trained", "sampled", "sampled"]
    assert result["subnetworks"][0]["step"] == 39


def test_predict_split_examples_returns_labels(api: httpx.Client) -> None:
    run_id = _trained_run(api, SMALL, steps=5)
    response = api.post(
        f"/api/runs/{run_id}/predict", json={"split": "test", "count": 12, "k": 5}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert len(result["labels"]) == 12
    assert len(result["weight_scaling"][0]) == 10
    assert result["step"] == 5
    picked = api.post(
        f"/api/runs/{run_id}/predict",
        json={"split": "test", "indices": [11, 0], "k": 2},
    ).json()
    assert picked["labels"] == [result["labels"][11], result["labels"][0]]
    response = api.post(
        f"/api/runs/{run_id}/predict", json={"split": "test", "indices": [450]}
    )
    assert response.status_code == 422
    assert "0 to 449" in response.json()["detail"][0]["msg"]


def test_predict_invalid_requests_return_422(api: httpx.Client) -> None:
    run_id = api.post("/api/runs", json=SMALL).json()["id"]
    cases = [
        ({}, "body"),
        ({"grid": 10}, "grid"),  # digits has 64 features, not 2
        ({"points": [[0.0, 1.0]]}, "points"),
        ({"points": [[0.0] * 64, [0.0]]}, "points"),
        ({"points": [[0.0] * 64] * 2001, "k": 1000}, "k"),
        ({"points": [[0.0] * 64], "grid": 5}, "body"),
    ]
    for body, field in cases:
        response = api.post(f"/api/runs/{run_id}/predict", json=body)
        assert response.status_code == 422, (body, response.text)
        detail = response.json()["detail"]
        assert any(field in error["loc"] or field == "body" for error in detail), detail


def test_predict_hidden_unit_activations(api: httpx.Client) -> None:
    body = {"dataset": "circles", "n_samples": 100, "hidden_sizes": [6, 4]}
    run_id = _trained_run(api, body, steps=10)
    response = api.post(
        f"/api/runs/{run_id}/predict", json={"grid": 8, "k": 2, "hidden_units": True}
    )
    assert response.status_code == 200, response.text
    hidden = response.json()["hidden_activations"]
    assert [len(layer) for layer in hidden] == [6, 4]
    assert all(len(unit) == 64 for layer in hidden for unit in layer)
    assert all(value >= 0.0 for layer in hidden for unit in layer for value in unit)

    big = _trained_run(api, {"dataset": "circles", "hidden_sizes": [300]}, steps=1)
    response = api.post(
        f"/api/runs/{big}/predict", json={"grid": 8, "hidden_units": True}
    )
    assert response.status_code == 422
    assert "256 units" in response.json()["detail"][0]["msg"]
