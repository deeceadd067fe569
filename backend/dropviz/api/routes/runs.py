"""REST control of runs: create, list, read, start, pause, step, stop, delete.

Control handlers are plain `def` functions: FastAPI runs them in its thread
pool, because pausing or stopping waits for the run's worker thread to settle.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from dropviz.api.deps import ManagerDep, RunDep, SettingsDep, UploadsDep
from dropviz.api.limits import check_layer_limits
from dropviz.api.schemas import (
    EpochOut,
    MetricsOut,
    RunConfig,
    RunOut,
    SpeedUpdate,
    check_parameter_count,
)
from dropviz.datasets.catalogue import load_run_dataset
from dropviz.runs import history
from dropviz.training.data import Dataset

router = APIRouter(prefix="/runs", tags=["runs"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_run(
    manager: ManagerDep,
    settings: SettingsDep,
    uploads: UploadsDep,
    config: RunConfig | None = None,
) -> RunOut:
    """Create a run; an empty body `{}` (or none) gives the dashboard's defaults.

    A missing or invalid data file gets 422 naming the file and the fix.
    """
    config = config or RunConfig()
    check_layer_limits(config.hidden_sizes, settings, ("body",))
    # Loading the data set and drawing initial weights can take a moment.
    train_config, dataset = await run_in_threadpool(
        load_run_dataset, config.to_train_config(), settings, uploads
    )
    _check_layer_sizes(dataset, config)
    run = await run_in_threadpool(
        manager.create, train_config, config.max_steps_per_second, dataset
    )
    return RunOut.model_validate(run.summary())


def _check_layer_sizes(dataset: Dataset, config: RunConfig) -> None:
    # RunConfig checks the built-in data sets; an upload's size is known only now.
    try:
        check_parameter_count(
            [dataset.n_features, *config.hidden_sizes, dataset.n_classes]
        )
    except ValueError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "hidden_sizes"),
                    "msg": str(exc),
                    "input": config.hidden_sizes,
                }
            ]
        ) from None


@router.get("")
def read_runs(manager: ManagerDep) -> list[RunOut]:
    return [RunOut.model_validate(run.summary()) for run in manager.list()]


@router.get("/{run_id}")
def read_run(run: RunDep) -> RunOut:
    return RunOut.model_validate(run.summary())


@router.patch("/{run_id}")
def update_run(run: RunDep, update: SpeedUpdate) -> RunOut:
    """Change the training pace, also while the run trains."""
    run.set_speed(update.max_steps_per_second)
    return RunOut.model_validate(run.summary())


@router.get("/{run_id}/metrics")
def read_metrics(run: RunDep) -> MetricsOut:
    """Return the per-epoch loss and accuracy, measured without dropout."""
    return MetricsOut(epochs=[EpochOut.model_validate(e) for e in run.epoch_history()])


@router.post("/{run_id}/start")
def start_run(run: RunDep, manager: ManagerDep) -> RunOut:
    """Start a created run or resume a paused one."""
    manager.start(run.id)
    return RunOut.model_validate(run.summary())


@router.post("/{run_id}/pause")
def pause_run(run: RunDep) -> RunOut:
    run.pause()
    return RunOut.model_validate(run.summary())


@router.post("/{run_id}/step")
def step_run(run: RunDep) -> RunOut:
    """Train exactly one mini-batch of a created or paused run."""
    run.step_once()
    return RunOut.model_validate(run.summary())


@router.post("/{run_id}/stop")
def stop_run(run: RunDep) -> RunOut:
    """End the run for good; its weights stay readable."""
    run.stop()
    return RunOut.model_validate(run.summary())


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_run(run: RunDep, manager: ManagerDep) -> Response:
    manager.delete(run.id)
    history.forget(run.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{run_id}/weights",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def read_weights(run: RunDep) -> Response:
    """Download the current weights and biases as `.npz` (W0, b0, W1, b1, ...)."""
    step, payload = run.weights_npz()
    filename = f"dropviz-{run.id}-step{step}.npz"
    return Response(
        content=payload,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/{run_id}/data",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def read_data(run: RunDep) -> Response:
    """Download the run's two splits as `.npz`, as the network receives them.

    Arrays: x_train and x_test (float32), y_train and y_test (int64 class
    indices), train_index and test_index (the source rows of each split), and
    class_names. Standardized data adds feature_mean and feature_scale
    (float64), and a CSV adds feature_names. All of MNIST is about 220 MB.
    """
    payload = run.dataset_npz()
    filename = f"dropviz-{run.id}-data.npz"
    return Response(
        content=payload,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
