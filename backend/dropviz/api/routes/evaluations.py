"""Ensemble inference on a run: start, poll and cancel evaluation jobs."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool

from dropviz.api.deps import RunDep
from dropviz.api.schemas import (
    MAX_PREDICT_WORK,
    EvaluationIn,
    EvaluationOut,
    PredictIn,
    PredictOut,
)
from dropviz.runs.evaluations import EvaluationJob, JobStatus, PredictRequest, predict
from dropviz.runs.run import Run

router = APIRouter(prefix="/runs/{run_id}", tags=["evaluations"])


@router.post(
    "/evaluate",
    responses={202: {"model": EvaluationOut, "description": "Still running; poll it."}},
)
async def evaluate_run(
    run: RunDep, body: EvaluationIn, response: Response
) -> EvaluationOut:
    """Combine the run's sub-networks by the chosen rule on its current weights.

    Returns 200 with the result when it finishes within `wait_seconds`, else 202
    with the job, which `GET .../evaluations/{job_id}` polls and `DELETE`
    cancels. Progress also arrives on the run's stream as `evaluation` events.
    """
    try:
        job = await run_in_threadpool(run.start_evaluation, body.to_request())
    except ValueError as exc:
        field = "layers" if body.rule == "exact" else "rule"
        value = body.layers if field == "layers" else body.rule
        raise _unprocessable(field, str(exc).rstrip("."), value) from exc
    await run_in_threadpool(job.wait, body.wait_seconds)
    if job.status == JobStatus.RUNNING:
        response.status_code = status.HTTP_202_ACCEPTED
    return EvaluationOut.model_validate(job.summary())


@router.get("/evaluations")
def read_evaluations(run: RunDep) -> list[EvaluationOut]:
    """List this run's recent evaluations, oldest first, without their results."""
    return [
        EvaluationOut.model_validate({**job.summary(), "result": None})
        for job in list(run.evaluations.values())
    ]


@router.get("/evaluations/{job_id}")
def read_evaluation(run: RunDep, job_id: str) -> EvaluationOut:
    return EvaluationOut.model_validate(_job(run, job_id).summary())


@router.delete("/evaluations/{job_id}")
def cancel_evaluation(run: RunDep, job_id: str) -> EvaluationOut:
    """Ask a running evaluation to stop; it ends at its next check."""
    job = _job(run, job_id)
    job.cancel()
    job.wait(5.0)
    return EvaluationOut.model_validate(job.summary())


def _job(run: Run, job_id: str) -> EvaluationJob:
    job = run.evaluations.get(job_id)
    if job is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND,
            detail=(
                f"Evaluation {job_id!r} of run {run.id} not found; "
                f"GET /api/runs/{run.id}/evaluations lists them."
            ),
        )
    return job


@router.post("/predict")
def predict_run(run: RunDep, body: PredictIn) -> PredictOut:
    """Predict with weight scaling, MC averaging and single sub-networks.

    For decision maps, `grid` spans the run's data (train and test) plus a
    margin of a quarter of its range on each side.
    """
    network, step, last_masks = run.network_snapshot()
    dataset = run.trainer.dataset
    grid_axes = None
    labels = None
    if body.points is not None:
        widths = {len(row) for row in body.points}
        if widths != {dataset.n_features}:
            raise _unprocessable(
                "points",
                f"each point needs {dataset.n_features} features (the run's input "
                f"width); got rows of {sorted(widths)}",
                sorted(widths),
            )
        points = np.asarray(body.points, dtype=np.float64)
    elif body.grid is not None:
        if dataset.n_features != 2:
            raise _unprocessable(
                "grid",
                f"a grid needs a 2-feature data set; {dataset.name} has "
                f"{dataset.n_features} features; send points or split instead",
                body.grid,
            )
        points, grid_axes = _grid(
            np.concatenate([dataset.x_train, dataset.x_test]), body.grid
        )
    else:
        x = dataset.x_test if body.split == "test" else dataset.x_train
        y = dataset.y_test if body.split == "test" else dataset.y_train
        if body.indices is not None:
            too_large = [index for index in body.indices if index >= len(y)]
            if too_large:
                raise _unprocessable(
                    "indices",
                    f"the {body.split} split has {len(y)} examples, so indices run "
                    f"from 0 to {len(y) - 1}; got {too_large[:5]}",
                    too_large[:5],
                )
            rows = np.asarray(body.indices, dtype=np.int64)
            points, labels = x[rows], y[rows].tolist()
        else:
            points, labels = x[: body.count], y[: body.count].tolist()

    if len(points) * body.k > MAX_PREDICT_WORK:
        raise _unprocessable(
            "k",
            f"{len(points)} points times k = {body.k} passes the limit of "
            f"{MAX_PREDICT_WORK:,} forward rows; lower k or send fewer points",
            body.k,
        )
    if body.hidden_units:
        hidden_total = sum(w.shape[1] for w in network.params.weights[:-1])
        if hidden_total > 256 or len(points) > 2500:
            raise _unprocessable(
                "hidden_units",
                f"activations of {hidden_total} hidden units at {len(points)} points "
                "pass the limit of 256 units and 2,500 points; use a smaller grid "
                "or network",
                True,
            )
    request = PredictRequest(
        points, body.k, body.seed, body.subnetworks, body.hidden_units
    )
    result = predict(network, request, last_masks, step)
    return PredictOut.model_validate(
        {**result, "grid": grid_axes, "labels": labels, "step": step}
    )


def _grid(
    data: np.ndarray, resolution: int
) -> tuple[np.ndarray, dict[str, list[float]]]:
    low, high = data.min(axis=0), data.max(axis=0)
    margin = 0.25 * (high - low)
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)  # row-major: y rows, x columns
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    axes = {
        "x": [round(float(v), 6) for v in xs],
        "y": [round(float(v), 6) for v in ys],
    }
    return points, axes


def _unprocessable(field: str, message: str, value: object) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[
            {
                "loc": ["body", field],
                "msg": f"{field}: {message}.",
                "type": "value_error",
                "input": value,
            }
        ],
    )
