"""Data sets through the real server: the catalogue, CSV uploads and IDX folders."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from dropviz.training.idx import IDX_FILE_NAMES
from tests.api.helpers import wait_for_status
from tests.conftest import LiveServer, start_server, stop_server
from tests.idx_files import idx_bytes, write_idx, write_mnist_folder

CSV_HEADERS = {"content-type": "text/csv"}
SMALL_RUN = {"hidden_sizes": [16], "batch_size": 10, "epochs": 5}

Uploader = Callable[..., httpx.Response]


def make_csv(n_rows: int = 60, seed: int = 0) -> str:
    """Two separable classes, a constant column, and the label in the middle."""
    rng = np.random.default_rng(seed)
    lines = ["width,species,height,constant"]
    for row in range(n_rows):
        species = "virginica" if row % 2 else "setosa"
        center = 50.0 if species == "virginica" else 10.0
        width = rng.normal(center, 4.0)
        height = rng.normal(-1000.0, 0.5)
        lines.append(f"{width:.6f},{species},{height:.6f},3.5")
    return "\n".join(lines) + "\n"


@pytest.fixture
def upload(api: httpx.Client) -> Iterator[Uploader]:
    """Upload a CSV; every upload that succeeded is deleted after the test."""
    names: list[str] = []

    def send(
        body: str | bytes,
        label_column: str | None = "species",
        headers: dict[str, str] | None = None,
        **params: str,
    ) -> httpx.Response:
        if label_column is not None:
            params["label_column"] = label_column
        response = api.post(
            "/api/datasets/csv",
            params=params,
            content=body,
            headers=CSV_HEADERS if headers is None else headers,
        )
        if response.status_code == 201:
            names.append(response.json()["name"])
        return response

    yield send
    for name in names:
        api.delete(f"/api/datasets/{name}")


def read_run_data(api: httpx.Client, run_id: str) -> dict[str, np.ndarray]:
    response = api.get(f"/api/runs/{run_id}/data")
    assert response.status_code == 200, response.text
    archive = np.load(io.BytesIO(response.content))
    return {key: archive[key] for key in archive.files}


def only_error(response: httpx.Response) -> dict:
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    assert isinstance(details, list)
    assert len(details) == 1, details
    return details[0]


# catalogue -------------------------------------------------------------------


def test_list_datasets_entries_have_shape(api: httpx.Client) -> None:
    entries = {entry["name"]: entry for entry in api.get("/api/datasets").json()}
    for entry in entries.values():
        assert set(entry) == {
            "name",
            "description",
            "n_features",
            "n_classes",
            "input_shape",
            "kind",
            "available",
            "hint",
        }
    assert entries["digits"]["available"] is True
    assert entries["digits"]["hint"] is None
    assert entries["moons"]["kind"] == "generated"
    assert entries["mnist"]["input_shape"] == [28, 28]
    assert entries["mnist"]["n_features"] == 784
    assert entries["mnist"]["n_classes"] == 10


def test_list_datasets_idx_availability(api: httpx.Client, idx_data_dir: Path) -> None:
    entries = {entry["name"]: entry for entry in api.get("/api/datasets").json()}
    assert entries["mnist"]["available"] is True
    assert entries["mnist"]["hint"] is None

    fashion = entries["fashion-mnist"]
    assert fashion["available"] is False
    assert str(idx_data_dir / "fashion-mnist") in fashion["hint"]
    assert "train-images-idx3-ubyte" in fashion["hint"]
    assert "t10k-labels-idx1-ubyte" in fashion["hint"]
    assert "DROPVIZ_DATA_DIR" in fashion["hint"]


# CSV uploads -----------------------------------------------------------------


def test_upload_csv_then_train_run(api: httpx.Client, upload: Uploader) -> None:
    response = upload(make_csv(), name="iris-like")
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert re.fullmatch(r"csv:[0-9a-f]{12}", dataset["name"])
    assert dataset["n_features"] == 3
    assert dataset["n_classes"] == 2
    assert dataset["input_shape"] is None
    assert dataset["kind"] == "csv"
    assert dataset["available"] is True
    assert dataset["description"].startswith("iris-like: uploaded CSV with 60 rows")
    listed = [entry["name"] for entry in api.get("/api/datasets").json()]
    assert dataset["name"] in listed

    created = api.post("/api/runs", json={"dataset": dataset["name"], **SMALL_RUN})
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["layer_sizes"] == [3, 16, 2]
    assert run["config"]["dataset"] == dataset["name"]
    assert run["train_size"] == 45
    assert run["test_size"] == 15

    stepped = api.post(f"/api/runs/{run['id']}/step")
    assert stepped.status_code == 200
    assert stepped.json()["step"] == 1

    assert api.post(f"/api/runs/{run['id']}/start").status_code == 200
    finished = wait_for_status(api, run["id"], {"finished", "diverged", "stopped"})
    assert finished["status"] == "finished"
    assert finished["final_test_accuracy"] >= 0.9  # the classes do not overlap


def test_csv_run_standardized_with_train_rows(
    api: httpx.Client, upload: Uploader
) -> None:
    text = make_csv(n_rows=40, seed=3)
    name = upload(text).json()["name"]
    run = api.post("/api/runs", json={"dataset": name, "seed": 7, **SMALL_RUN}).json()
    data = read_run_data(api, run["id"])

    # an independent reading of the CSV text: features in column order
    rows = list(csv.DictReader(io.StringIO(text)))
    columns = ["width", "height", "constant"]
    source = np.array([[float(row[c]) for c in columns] for row in rows])
    train = source[data["train_index"]]
    test = source[data["test_index"]]
    mean = train.mean(axis=0)
    deviation = train.std(axis=0)
    scale = np.where(deviation > 0, deviation, 1.0)

    assert sorted([*data["train_index"], *data["test_index"]]) == list(range(40))
    assert np.allclose(data["feature_mean"], mean, rtol=1e-12)
    assert np.allclose(data["feature_scale"], scale, rtol=1e-12)
    assert np.allclose(data["x_train"], (train - mean) / scale, atol=1e-5)
    assert np.allclose(data["x_test"], (test - mean) / scale, atol=1e-5)
    assert np.all(np.isfinite(data["x_train"]))
    assert np.all(data["x_train"][:, 2] == 0.0)  # the constant column
    # The statistics of all 40 rows differ, so the test rows did not enter them.
    assert not np.allclose(source.mean(axis=0)[:2], mean[:2], rtol=1e-9)
    labels = np.array([row["species"] for row in rows])
    class_names = list(data["class_names"])
    assert class_names == ["setosa", "virginica"]
    assert [class_names[k] for k in data["y_train"]] == list(
        labels[data["train_index"]]
    )
    assert list(data["feature_names"]) == columns


@pytest.mark.parametrize(
    "body, label_column, loc, words",
    [
        pytest.param(
            "a,species\n1,x\n2,y\nseven,x\n",
            "species",
            ["body", 4, "a"],
            ["Line 4, column 'a'", "'seven'", "not a number"],
            id="non-numeric",
        ),
        pytest.param(
            "a,b,kind\n1,2,x\n3,4,y\n",
            "species",
            ["label_column"],
            ["label_column = 'species'", "'a', 'b', 'kind'"],
            id="missing-label-column",
        ),
        pytest.param(
            "a,species\n1,x\n2,x\n3,x\n",
            "species",
            ["label_column"],
            ["only one class, 'x'", "at least two classes"],
            id="one-class",
        ),
        pytest.param("", "species", ["body"], ["The CSV is empty"], id="empty"),
        pytest.param(
            "a,b,species\n1,2,x\n3,4\n",
            "species",
            ["body", 3],
            ["Line 3", "2 cells", "3 columns"],
            id="ragged",
        ),
        pytest.param(
            "a,species\n1,x\n2,y\n",
            "species",
            ["label_column"],
            ["single row", "at least two rows"],
            id="class-of-one",
        ),
    ],
)
def test_upload_invalid_csv_returns_422(
    upload: Uploader,
    body: str,
    label_column: str,
    loc: list[str | int],
    words: list[str],
) -> None:
    error = only_error(upload(body, label_column))
    assert error["loc"] == loc
    for word in words:
        assert word in error["msg"]


def test_upload_default_label_column_is_label(upload: Uploader) -> None:
    response = upload("x,label\n1,0\n2,1\n3,0\n4,1\n", label_column=None)
    assert response.status_code == 201, response.text
    assert response.json()["n_classes"] == 2


def test_upload_wrong_content_type_returns_415(upload: Uploader) -> None:
    response = upload(make_csv(), headers={"content-type": "application/json"})
    assert response.status_code == 415
    assert "text/csv" in response.json()["detail"]
    latin = upload(make_csv(), headers={"content-type": "text/csv; charset=latin-1"})
    assert latin.status_code == 415
    assert "UTF-8" in latin.json()["detail"]


def test_create_run_on_wide_csv_checks_parameters(
    api: httpx.Client, upload: Uploader
) -> None:
    header = ",".join(f"f{i}" for i in range(1000)) + ",species"
    rows = [",".join(["1"] * 1000) + f",{label}" for label in "xxyy"]
    name = upload("\n".join([header, *rows]) + "\n").json()["name"]
    response = api.post(
        "/api/runs",
        json={"dataset": name, "hidden_sizes": [4096, 4096], "test_fraction": 0.5},
    )
    error = only_error(response)
    assert error["loc"] == ["body", "hidden_sizes"]
    assert "parameters and the maximum is 20,000,000" in error["msg"]


def test_create_run_csv_split_too_small_returns_422(
    api: httpx.Client, upload: Uploader
) -> None:
    name = upload("a,species\n1,x\n2,x\n3,y\n4,y\n5,z\n6,z\n").json()["name"]
    error = only_error(api.post("/api/runs", json={"dataset": name}))
    assert error["loc"] == ["test_fraction"]
    assert "leaves 2 of the 6 examples for test" in error["msg"]


def test_delete_uploaded_dataset(api: httpx.Client, upload: Uploader) -> None:
    name = upload(make_csv()).json()["name"]
    run_id = api.post("/api/runs", json={"dataset": name, **SMALL_RUN}).json()["id"]

    assert api.delete(f"/api/datasets/{name}").status_code == 204
    listed = [entry["name"] for entry in api.get("/api/datasets").json()]
    assert name not in listed
    error = only_error(api.post("/api/runs", json={"dataset": name}))
    assert error["loc"] == ["dataset"]
    assert "not an uploaded data set" in error["msg"]
    # the run created before keeps its data
    assert api.post(f"/api/runs/{run_id}/step").status_code == 200

    missing = api.delete(f"/api/datasets/{name}")
    assert missing.status_code == 404
    assert name in missing.json()["detail"]
    assert api.delete("/api/datasets/digits").status_code == 409


# CSV limits, on a server of their own ------------------------------------------


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log_path = tmp_path_factory.mktemp("limited") / "server.log"
    server = start_server(
        log_path,
        {"DROPVIZ_MAX_CSV_BYTES": "2048", "DROPVIZ_MAX_UPLOADED_DATASETS": "2"},
    )
    yield server
    stop_server(server)
    assert "Traceback" not in server.log(), server.log()


def test_upload_too_large_returns_413(limited_server: LiveServer) -> None:
    body = make_csv(n_rows=200)
    assert len(body) > 2048
    with httpx.Client(base_url=limited_server.base_url, timeout=30.0) as client:
        response = client.post(
            "/api/datasets/csv?label_column=species", content=body, headers=CSV_HEADERS
        )
        assert response.status_code == 413
        assert "max_csv_bytes, 2,048 bytes" in response.json()["detail"]
        assert "DROPVIZ_MAX_CSV_BYTES" in response.json()["detail"]

        # without Content-Length the limit applies while the body streams in
        chunked = client.post(
            "/api/datasets/csv?label_column=species",
            content=iter([body[:1500].encode(), body[1500:3000].encode()]),
            headers=CSV_HEADERS,
        )
        assert chunked.status_code == 413


def test_upload_count_limit_returns_409(limited_server: LiveServer) -> None:
    body = make_csv(n_rows=20)
    url = "/api/datasets/csv?label_column=species"
    with httpx.Client(base_url=limited_server.base_url, timeout=30.0) as client:
        names = []
        for _ in range(2):
            response = client.post(url, content=body, headers=CSV_HEADERS)
            assert response.status_code == 201, response.text
            names.append(response.json()["name"])

        full = client.post(url, content=body, headers=CSV_HEADERS)
        assert full.status_code == 409
        assert "max_uploaded_datasets is 2" in full.json()["detail"]

        assert client.delete(f"/api/datasets/{names[0]}").status_code == 204
        again = client.post(url, content=body, headers=CSV_HEADERS)
        assert again.status_code == 201


# IDX folders -------------------------------------------------------------------


def test_mnist_from_settings_folder_trains(
    api: httpx.Client, idx_data_dir: Path
) -> None:
    body = {
        "dataset": "mnist",
        "hidden_sizes": [32],
        "input_drop_rate": 0.0,
        "hidden_drop_rate": 0.2,
        "learning_rate": 0.1,
        "batch_size": 20,
        "epochs": 8,
    }
    response = api.post("/api/runs", json=body)
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["layer_sizes"] == [784, 32, 10]
    assert run["input_shape"] == [28, 28]
    assert run["train_size"] == 200
    assert run["test_size"] == 50
    assert run["config"]["data_dir"] == str(idx_data_dir.resolve())

    api.post(f"/api/runs/{run['id']}/start")
    finished = wait_for_status(api, run["id"], {"finished", "diverged", "stopped"})
    assert finished["status"] == "finished"
    # each class is a bright bar of its own, so the test images are easy
    assert finished["final_test_accuracy"] >= 0.8


def test_mnist_data_keeps_pixel_scale(api: httpx.Client) -> None:
    run = api.post("/api/runs", json={"dataset": "mnist", "n_train": 64}).json()
    assert run["train_size"] == 64
    data = read_run_data(api, run["id"])
    assert data["x_train"].shape == (64, 784)
    assert data["x_test"].shape == (50, 784)
    assert data["x_train"].min() >= 0.0
    assert data["x_train"].max() == 1.0
    assert "feature_mean" not in data
    assert list(data["class_names"]) == [str(digit) for digit in range(10)]


def test_mnist_from_run_data_dir(api: httpx.Client, tmp_path: Path) -> None:
    write_mnist_folder(tmp_path / "fashion-mnist", n_train=30, n_test=10, seed=5)
    response = api.post(
        "/api/runs", json={"dataset": "fashion-mnist", "data_dir": str(tmp_path)}
    )
    assert response.status_code == 201, response.text
    assert response.json()["train_size"] == 30
    assert response.json()["config"]["data_dir"] == str(tmp_path)


def _wrong_magic(folder: Path) -> Path:
    path = folder / IDX_FILE_NAMES["train_images"]
    path.write_bytes(b"\x08\x03\x00\x00" + path.read_bytes()[4:])
    return path


def _fewer_labels(folder: Path) -> Path:
    labels = np.zeros(199, dtype=np.uint8)
    return write_idx(folder / IDX_FILE_NAMES["train_labels"], idx_bytes(labels))


def _missing_file(folder: Path) -> Path:
    path = folder / IDX_FILE_NAMES["test_images"]
    path.unlink()
    return path


@pytest.mark.parametrize(
    "damage, words",
    [
        pytest.param(_wrong_magic, ["magic number 0x08030000"], id="magic"),
        pytest.param(_fewer_labels, ["200 images", "199 labels"], id="counts"),
        pytest.param(_missing_file, ["is missing", "DROPVIZ_DATA_DIR"], id="missing"),
    ],
)
def test_create_run_bad_idx_folder_returns_422(
    api: httpx.Client,
    tmp_path: Path,
    damage: Callable[[Path], Path],
    words: list[str],
) -> None:
    folder = tmp_path / "mnist"
    write_mnist_folder(folder, n_train=200, n_test=20)
    damaged = damage(folder)
    response = api.post(
        "/api/runs", json={"dataset": "mnist", "data_dir": str(tmp_path)}
    )
    error = only_error(response)
    assert error["loc"] == ["data_dir"]
    assert damaged.name in error["msg"]
    for word in words:
        assert word in error["msg"]


def test_create_run_fashion_mnist_missing_returns_422(
    api: httpx.Client, idx_data_dir: Path
) -> None:
    error = only_error(api.post("/api/runs", json={"dataset": "fashion-mnist"}))
    assert error["loc"] == ["data_dir"]
    assert error["type"] == "idx_files_missing"
    assert str(idx_data_dir / "fashion-mnist") in error["msg"]
    assert "does not exist" in error["msg"]
    assert "DROPVIZ_DATA_DIR" in error["msg"]
