"""Ensemble inference on a run: start, poll and cancel evaluation jobs."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool

from dropviz.api.deps import RunDep
from dropviz.api.schemas import EvaluationIn, EvaluationOut
from dropviz.runs.evaluations import EvaluationJob, JobStatus
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
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["body", field],
                    "msg": f"{field}: {str(exc).rstrip('.')}.",
                    "type": "value_error",
                    "input": body.layers if field == "layers" else body.rule,
                }
            ],
        ) from exc
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
