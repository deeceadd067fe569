"""Runs that outlast the server: kill -9, restart, resume bit-identically."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import numpy as np

from dropviz.training.config import TrainConfig
from dropviz.training.trainer import Trainer
from tests.api.helpers import read_weights, wait_for_status
from tests.conftest import LiveServer, start_server, stop_server

DIGITS = {"hidden_sizes": [32, 32], "epochs": 40}


def _kill(server: LiveServer) -> None:
    server.process.kill()  # SIGKILL: no shutdown code runs
    server.process.wait()
    server.log_file.close()


def _trained_reference(body: dict, step_count: int) -> Trainer:
    config = TrainConfig(
        **{**body, "hidden_sizes": tuple(body["hidden_sizes"])}  # type: ignore[arg-type]
    )
    trainer = Trainer(config)
    for _ in range(step_count):
        trainer.step()
    return trainer


def test_kill_9_restart_lists_runs_and_resumes_exactly(tmp_path: Path) -> None:
    state_dir = str(tmp_path / "state")
    env = {"DROPVIZ_STATE_DIR": state_dir, "DROPVIZ_CHECKPOINT_STEPS": "500"}
    server = start_server(tmp_path / "first.log", env)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
            finished = api.post("/api/runs", json={**DIGITS, "epochs": 2}).json()
            api.post(f"/api/runs/{finished['id']}/start")
            wait_for_status(api, finished["id"], {"finished"})

            running_body = {**DIGITS, "seed": 7}
            running = api.post("/api/runs", json=running_body).json()
            api.post(f"/api/runs/{running['id']}/start")

            paused = api.post("/api/runs", json={**DIGITS, "seed": 3}).json()
            for _ in range(5):
                api.post(f"/api/runs/{paused['id']}/step")
            created = api.post("/api/runs", json={**DIGITS, "seed": 4}).json()

            # A generous bound: a loaded 2-core machine trains this run at a
            # few hundred steps per second or less.
            deadline = time.monotonic() + 180
            while api.get(f"/api/runs/{running['id']}").json()["step"] < 1200:
                assert time.monotonic() < deadline, "run did not reach step 1200"
                time.sleep(0.05)
    finally:
        _kill(server)

    server = start_server(tmp_path / "second.log", env)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
            runs = {run["id"]: run for run in api.get("/api/runs").json()}
            assert runs[finished["id"]]["status"] == "finished"
            assert runs[finished["id"]]["step"] == finished["total_steps"]
            assert runs[finished["id"]]["final_test_accuracy"] is not None
            assert runs[running["id"]]["status"] == "interrupted"
            assert runs[paused["id"]]["status"] == "paused"
            assert runs[paused["id"]]["step"] == 5
            assert runs[created["id"]]["status"] == "created"

            resumed_from = runs[running["id"]]["step"]
            # kill -9 loses the steps still queued for the storage writer, so
            # how far the run got on disk depends on the machine's load.
            assert resumed_from > 0
            for _ in range(100):
                response = api.post(f"/api/runs/{running['id']}/step")
                assert response.status_code == 200, response.text
            assert response.json()["step"] == resumed_from + 100
            weights, biases = read_weights(api, running["id"])

            # The finished run's final weights survived too.
            final_weights, _ = read_weights(api, finished["id"])
    finally:
        stop_server(server)

    reference = _trained_reference(running_body, resumed_from + 100)
    for mine, theirs in zip(
        weights + biases,
        reference.params.weights + reference.params.biases,
        strict=True,
    ):
        assert mine.tobytes() == theirs.tobytes()
    finished_reference = _trained_reference(
        {**DIGITS, "epochs": 2}, finished["total_steps"]
    )
    assert np.array_equal(final_weights[0], finished_reference.params.weights[0])


def test_sigterm_saves_running_runs_within_grace(tmp_path: Path) -> None:
    env = {"DROPVIZ_STATE_DIR": str(tmp_path / "state")}
    server = start_server(tmp_path / "first.log", env)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
            run = api.post("/api/runs", json={**DIGITS, "epochs": 1000}).json()
            api.post(f"/api/runs/{run['id']}/start")
            time.sleep(1.0)
    finally:
        started = time.monotonic()
        server.process.terminate()  # SIGTERM, as `docker compose stop` sends
        exit_code = server.process.wait(timeout=30)
        stopped_after = time.monotonic() - started
        server.log_file.close()
    # uvicorn re-raises SIGTERM once its shutdown is complete.
    assert exit_code in (0, -signal.SIGTERM)
    assert stopped_after < 10.0  # docker-compose.yml's stop_grace_period
    first_log = server.log()
    assert "Application shutdown complete" in first_log
    assert f"run interrupted: run_id={run['id']}" in first_log
    assert "Traceback" not in first_log

    server = start_server(tmp_path / "second.log", env)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
            restored = api.get(f"/api/runs/{run['id']}").json()
    finally:
        stop_server(server)
    assert restored["status"] == "interrupted"
    assert restored["step"] > 0
    # The shutdown wrote a checkpoint at the exact step: nothing was re-run.
    expected = f"checkpoint_step={restored['step']}"
    assert f"run restored: run_id={run['id']} status=interrupted" in server.log()
    assert expected in server.log()
