"""The REST API on a real server: lifecycle, validation, JSON safety."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest

from tests.api.helpers import read_weights, wait_for_status

TINY = {
    "dataset": "moons",
    "n_samples": 100,
    "hidden_sizes": [8],
    "batch_size": 10,
    "epochs": 2,
}


def test_health(api: httpx.Client) -> None:
    response = api.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_create_run_empty_body_gives_defaults(api: httpx.Client) -> None:
    response = api.post("/api/runs", json={})
    assert response.status_code == 201
    run = response.json()
    assert run["status"] == "created"
    defaults = api.get("/api/defaults").json()
    assert {
        **run["config"],
        "max_steps_per_second": run["max_steps_per_second"],
    } == defaults
    assert run["config"]["dataset"] == "digits"
    assert run["config"]["hidden_sizes"] == [128, 128]
    assert run["config"]["input_drop_rate"] == 0.2
    assert run["config"]["hidden_drop_rate"] == 0.5
    assert run["config"]["seed"] == 0
    assert run["layer_sizes"] == [64, 128, 128, 10]
    assert run["input_shape"] == [8, 8]
    assert api.get(f"/api/runs/{run['id']}").json()["id"] == run["id"]
    assert run["id"] in [r["id"] for r in api.get("/api/runs").json()]


def test_create_run_without_body(api: httpx.Client) -> None:
    assert api.post("/api/runs").status_code == 201


@pytest.mark.parametrize(
    "body, field",
    [
        ('{"learning_rate": NaN}', "learning_rate"),
        ('{"learning_rate": Infinity}', "learning_rate"),
        ('{"input_drop_rate": -Infinity}', "input_drop_rate"),
        ('{"epochs": true}', "epochs"),
        ('{"batch_size": 8.0}', "batch_size"),
        ('{"seed": "3"}', "seed"),
        ('{"hidden_sizes": [1000000000000]}', "hidden_sizes"),
        ('{"hidden_sizes": [4096, 4096, 4096]}', "hidden_sizes"),
        ('{"hidden_sizes": []}', "hidden_sizes"),
        ('{"input_drop_rate": 1.0}', "input_drop_rate"),
        ('{"hidden_drop_rate": 1.5}', "hidden_drop_rate"),
        ('{"dataset": "cifar10"}', "dataset"),
        ('{"dataset": "csv:xyz"}', "dataset"),
        ('{"dataset": "mnist", "data_dir": "relative/path"}', "data_dir"),
        ('{"dataset": "digits", "data_dir": "/tmp"}', "data_dir"),
        ('{"n_train": 0}', "n_train"),
        ('{"n_train": 1.5}', "n_train"),
        ('{"activation": "gelu"}', "activation"),
        ('{"learning_rate": 0}', "learning_rate"),
        ('{"drop_rate": 0.5}', "drop_rate"),
    ],
)
def test_create_run_invalid_body_returns_422(
    api: httpx.Client, body: str, field: str
) -> None:
    response = api.post(
        "/api/runs", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    assert any(field in error["loc"] for error in details), details
    assert any(error["msg"].startswith(field) for error in details), details


def test_create_run_malformed_json_returns_422(api: httpx.Client) -> None:
    response = api.post(
        "/api/runs", content="{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_unknown_run_returns_404(api: httpx.Client) -> None:
    for method, path in [
        ("GET", "/api/runs/nosuchrun"),
        ("POST", "/api/runs/nosuchrun/start"),
        ("POST", "/api/runs/nosuchrun/step"),
        ("GET", "/api/runs/nosuchrun/weights"),
        ("DELETE", "/api/runs/nosuchrun"),
    ]:
        response = api.request(method, path)
        assert response.status_code == 404, (method, path)
        assert "nosuchrun" in response.json()["detail"]


def test_lifecycle_to_finished_and_conflicts(api: httpx.Client) -> None:
    run = api.post("/api/runs", json=TINY).json()
    run_id = run["id"]
    assert api.post(f"/api/runs/{run_id}/pause").status_code == 409

    stepped = api.post(f"/api/runs/{run_id}/step").json()
    assert stepped["status"] == "paused"
    assert stepped["step"] == 1

    assert api.post(f"/api/runs/{run_id}/start").json()["status"] in {
        "running",
        "finished",
    }
    assert api.post(f"/api/runs/{run_id}/step").status_code in {409}
    finished = wait_for_status(api, run_id, {"finished"})
    assert finished["step"] == finished["total_steps"]
    assert finished["final_test_accuracy"] is not None
    assert 0.0 <= finished["final_test_accuracy"] <= 1.0
    assert finished["latest"]["test_accuracy"] == finished["final_test_accuracy"]

    response = api.post(f"/api/runs/{run_id}/start")
    assert response.status_code == 409
    assert "finished" in response.json()["detail"]
    assert api.post(f"/api/runs/{run_id}/step").status_code == 409
    assert api.post(f"/api/runs/{run_id}/stop").status_code == 409

    metrics = api.get(f"/api/runs/{run_id}/metrics").json()["epochs"]
    assert [m["epoch"] for m in metrics] == [0, 1]


def test_pause_resume_stop_delete(api: httpx.Client) -> None:
    run_id = api.post(
        "/api/runs", json={**TINY, "epochs": 1000, "max_steps_per_second": 200}
    ).json()["id"]
    assert api.post(f"/api/runs/{run_id}/start").json()["status"] == "running"
    paused = api.post(f"/api/runs/{run_id}/pause").json()
    assert paused["status"] == "paused"
    step = paused["step"]
    assert (
        api.get(f"/api/runs/{run_id}").json()["step"] == step
    )  # nothing trains while paused

    assert (
        api.patch(
            f"/api/runs/{run_id}", json={"max_steps_per_second": None}
        ).status_code
        == 200
    )
    assert api.post(f"/api/runs/{run_id}/start").json()["status"] == "running"
    stopped = api.post(f"/api/runs/{run_id}/stop").json()
    assert stopped["status"] == "stopped"
    assert stopped["step"] >= step
    assert api.post(f"/api/runs/{run_id}/start").status_code == 409
    assert api.get(f"/api/runs/{run_id}/weights").status_code == 200

    assert api.delete(f"/api/runs/{run_id}").status_code == 204
    assert api.get(f"/api/runs/{run_id}").status_code == 404


def test_diverged_run_reports_null_not_nan(api: httpx.Client) -> None:
    # Three wide ReLU layers at this rate overflow within about ten steps.
    body = {
        "dataset": "digits",
        "hidden_sizes": [512, 512, 512],
        "learning_rate": 10.0,
        "input_drop_rate": 0.0,
        "hidden_drop_rate": 0.0,
        "epochs": 50,
    }
    run_id = api.post("/api/runs", json=body).json()["id"]
    api.post(f"/api/runs/{run_id}/start")
    run = wait_for_status(api, run_id, {"diverged", "finished"})
    assert run["status"] == "diverged"
    assert isinstance(run["diverged_step"], int)
    assert run["latest"]["batch_loss"] is None
    assert run["step"] == run["diverged_step"] + 1
    for value in run["latest"].values():
        assert value is None or math.isfinite(value)
    # The whole listing stays valid JSON too.
    assert api.get("/api/runs").status_code == 200
    assert api.get(f"/api/runs/{run_id}/metrics").status_code == 200


def test_same_seed_gives_bit_identical_weights(api: httpx.Client) -> None:
    body = {
        "hidden_sizes": [64, 64],
        "input_drop_rate": 0.2,
        "hidden_drop_rate": 0.5,
        "seed": 5,
    }
    results = []
    for _ in range(2):
        run_id = api.post("/api/runs", json=body).json()["id"]
        for _ in range(200):
            assert api.post(f"/api/runs/{run_id}/step").status_code == 200
        results.append(read_weights(api, run_id))
    for a, b in zip(
        results[0][0] + results[0][1], results[1][0] + results[1][1], strict=True
    ):
        assert a.tobytes() == b.tobytes()


@pytest.mark.slow
def test_digits_default_run_reaches_95_percent(api: httpx.Client) -> None:
    run_id = api.post("/api/runs", json={}).json()["id"]
    api.post(f"/api/runs/{run_id}/start")
    run = wait_for_status(api, run_id, {"finished", "diverged", "stopped"}, timeout=300)
    assert run["status"] == "finished"
    assert run["epoch"] == 29
    assert run["final_test_accuracy"] >= 0.95


def test_weights_download_is_npz_with_every_layer(api: httpx.Client) -> None:
    run = api.post("/api/runs", json=TINY).json()
    weights, biases = read_weights(api, run["id"])
    sizes = run["layer_sizes"]
    assert [w.shape for w in weights] == list(zip(sizes[:-1], sizes[1:], strict=True))
    assert [b.shape for b in biases] == [(n,) for n in sizes[1:]]
    assert all(w.dtype == np.float32 for w in weights)


def test_tiny_speed_returns_422(api: httpx.Client) -> None:
    response = api.post("/api/runs", json={"max_steps_per_second": 1e-300})
    assert response.status_code == 422
    run_id = api.post("/api/runs", json={}).json()["id"]
    response = api.patch(f"/api/runs/{run_id}", json={"max_steps_per_second": 1e-20})
    assert response.status_code == 422
    assert "max_steps_per_second" in response.json()["detail"][0]["msg"]


def test_malformed_json_message_names_position(api: httpx.Client) -> None:
    response = api.post(
        "/api/runs",
        content='{"epochs": }',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    assert message.startswith("The request body is not valid JSON")
    assert "character" in message


def test_wrong_content_type_message_names_it(api: httpx.Client) -> None:
    response = api.post(
        "/api/runs", content="{}", headers={"content-type": "text/plain"}
    )
    assert response.status_code in (415, 422)
    if response.status_code == 422:
        assert "text/plain" in response.json()["detail"][0]["msg"]
