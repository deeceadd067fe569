"""The access token, cross-site write rules and limits, on real servers."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.api.helpers import StreamClient, wait_for_status
from tests.conftest import LiveServer, start_server, stop_server

TOKEN = "test-token-5f2c9a"
TINY = {"dataset": "moons", "n_samples": 100, "hidden_sizes": [8], "epochs": 2}


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("token-server")
    server = start_server(folder / "server.log", {"DROPVIZ_TOKEN": TOKEN})
    yield server
    stop_server(server)
    assert TOKEN not in server.log()  # the token is never logged


def test_token_required_for_api(token_server: LiveServer) -> None:
    url = token_server.base_url
    missing = httpx.get(f"{url}/api/runs")
    assert missing.status_code == 401
    assert "access token" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(f"{url}/api/runs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert httpx.post(f"{url}/api/runs", json={}).status_code == 401
    assert httpx.get(f"{url}/openapi.json").status_code == 401

    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{url}/api/runs", headers=bearer).status_code == 200
    cookie = {"Cookie": f"dropviz_token={TOKEN}"}
    assert httpx.get(f"{url}/api/runs", headers=cookie).status_code == 200


def test_health_and_page_open_without_token(token_server: LiveServer) -> None:
    url = token_server.base_url
    assert httpx.get(f"{url}/api/health").status_code == 200
    page = httpx.get(f"{url}/")
    assert page.status_code == 200
    assert 'src="js/token.js"' in page.text
    assert httpx.get(f"{url}/js/token.js").status_code == 200


def test_websocket_needs_token(token_server: LiveServer) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    run = httpx.post(f"{token_server.base_url}/api/runs", json=TINY, headers=bearer)
    run_id = run.json()["id"]
    with pytest.raises(InvalidStatus) as excinfo:
        with connect(f"{token_server.ws_url}/ws/runs/{run_id}", open_timeout=10):
            pass
    assert excinfo.value.response.status_code == 403

    with StreamClient.open(
        f"{token_server.ws_url}", f"{run_id}?token={TOKEN}"
    ) as client:
        assert client.snapshot.meta["run_id"] == run_id


def test_state_changes_accept_only_json(token_server: LiveServer) -> None:
    url = token_server.base_url
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    form = httpx.post(
        f"{url}/api/runs",
        content="dataset=moons",
        headers={**bearer, "content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    assert "application/json" in form.json()["detail"]
    text = httpx.post(
        f"{url}/api/runs",
        content="{}",
        headers={**bearer, "content-type": "text/plain"},
    )
    assert text.status_code == 415
    csv_as_text = httpx.post(
        f"{url}/api/datasets/csv",
        content="x,label\n1,a\n",
        headers={**bearer, "content-type": "text/plain"},
    )
    assert csv_as_text.status_code == 415
    cross_site = httpx.post(
        f"{url}/api/runs", json={}, headers={**bearer, "sec-fetch-site": "cross-site"}
    )
    assert cross_site.status_code == 403

    created = httpx.post(f"{url}/api/runs", json=TINY, headers=bearer)
    assert created.status_code == 201
    bare_start = httpx.post(
        f"{url}/api/runs/{created.json()['id']}/step", headers=bearer
    )
    assert bare_start.status_code == 200  # a POST without a body needs no type


def test_csv_upload_still_accepts_text_csv(token_server: LiveServer) -> None:
    rows = "\n".join(f"{i},{i % 3},{'ab'[i % 2]}" for i in range(40))
    response = httpx.post(
        f"{token_server.base_url}/api/datasets/csv",
        content=f"f1,f2,label\n{rows}\n",
        headers={"Authorization": f"Bearer {TOKEN}", "content-type": "text/csv"},
    )
    assert response.status_code == 201, response.text


LIMITS = {
    "DROPVIZ_MAX_UNITS_PER_LAYER": "32",
    "DROPVIZ_MAX_HIDDEN_LAYERS": "2",
    "DROPVIZ_MAX_RUNNING_RUNS": "1",
    "DROPVIZ_MAX_STORED_RUNS": "3",
    "DROPVIZ_MAX_CSV_BYTES": "2048",
    "DROPVIZ_MAX_CLIENTS_PER_RUN": "1",
    "DROPVIZ_MAX_IMPORT_BYTES": "4096",
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("limited-server")
    server = start_server(folder / "server.log", LIMITS)
    with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
        api.ws_url = server.ws_url  # type: ignore[attr-defined]
        yield api
    stop_server(server)


def _detail(response: httpx.Response) -> str:
    return str(response.json()["detail"])


def test_layer_limits_named(limited: httpx.Client) -> None:
    wide = limited.post("/api/runs", json={**TINY, "hidden_sizes": [33]})
    assert wide.status_code == 422
    assert "max_units_per_layer, 32" in _detail(wide)
    deep = limited.post("/api/runs", json={**TINY, "hidden_sizes": [8, 8, 8]})
    assert deep.status_code == 422
    assert "max_hidden_layers, 2" in _detail(deep)
    assert (
        limited.post("/api/runs", json={**TINY, "hidden_sizes": [32, 32]}).status_code
        == 201
    )


def test_run_count_limits_named(limited: httpx.Client) -> None:
    for run in limited.get("/api/runs").json():
        limited.delete(f"/api/runs/{run['id']}")
    body = {**TINY, "epochs": 10_000, "max_steps_per_second": 50}
    first = limited.post("/api/runs", json=body).json()
    second = limited.post("/api/runs", json=body).json()
    third = limited.post("/api/runs", json=TINY).json()
    fourth = limited.post("/api/runs", json=TINY)
    assert fourth.status_code == 409
    assert "max_stored_runs is 3" in _detail(fourth)

    assert limited.post(f"/api/runs/{first['id']}/start").status_code == 200
    again = limited.post(f"/api/runs/{second['id']}/start")
    assert again.status_code == 409
    assert "max_running_runs is 1" in _detail(again)

    # The first run trains on, and the others still respond.
    assert limited.post(f"/api/runs/{third['id']}/step").status_code == 200
    assert limited.get(f"/api/runs/{first['id']}").json()["status"] == "running"
    assert limited.post(f"/api/runs/{first['id']}/stop").status_code == 200


def test_upload_and_import_size_limits_named(limited: httpx.Client) -> None:
    big_csv = "x,label\n" + "1,a\n" * 510 + "1"  # 2,049 bytes: one too many
    assert len(big_csv) == 2049
    response = limited.post(
        "/api/datasets/csv", content=big_csv, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 413
    assert "max_csv_bytes, 2,048 bytes" in _detail(response)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("steps.bin", bytes(4097))
    response = limited.post(
        "/api/runs/import",
        content=buffer.getvalue(),
        headers={"content-type": "application/zip"},
    )
    assert response.status_code == 413
    assert "max_import_bytes, 4,096 bytes" in _detail(response)


def test_stream_client_limit_named(limited: httpx.Client) -> None:
    for run in limited.get("/api/runs").json():
        limited.delete(f"/api/runs/{run['id']}")
    run = limited.post("/api/runs", json=TINY).json()
    ws_url = limited.ws_url  # type: ignore[attr-defined]
    with StreamClient.open(ws_url, run["id"]) as first:
        with pytest.raises(ConnectionClosed) as excinfo:
            with connect(f"{ws_url}/ws/runs/{run['id']}", open_timeout=10) as ws:
                ws.recv(timeout=10)
        assert excinfo.value.rcvd is not None
        assert excinfo.value.rcvd.code == 1013
        assert excinfo.value.rcvd.reason == "max_clients_per_run is 1"
        limited.post(f"/api/runs/{run['id']}/step")
        first.receive_until_step(1)  # the first client keeps streaming


def test_disk_limit_pauses_run_and_rejects_create(tmp_path: Path) -> None:
    env = {"DROPVIZ_MAX_STATE_BYTES": str(1024 * 1024), "DROPVIZ_CHECKPOINT_STEPS": "5"}
    server = start_server(tmp_path / "server.log", env)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
            small = api.post("/api/runs", json=TINY).json()
            body = {"hidden_sizes": [256], "epochs": 100}  # 80 KB checkpoints
            big = api.post("/api/runs", json=body).json()
            api.post(f"/api/runs/{big['id']}/start")
            paused = wait_for_status(api, big["id"], {"paused"})
            assert "max_state_bytes is 1,048,576" in paused["error"]

            refused = api.post("/api/runs", json=TINY)
            assert refused.status_code == 409
            assert "max_state_bytes is 1,048,576" in _detail(refused)
            restart = api.post(f"/api/runs/{big['id']}/start")
            assert restart.status_code == 409

            assert api.post(f"/api/runs/{small['id']}/step").status_code == 200
            assert api.delete(f"/api/runs/{big['id']}").status_code == 204
            assert api.post("/api/runs", json=TINY).status_code == 201
    finally:
        stop_server(server)
