"""A stored run's past: replay any step, play back a range, export, import.

Masks and metrics come from the run's step file; weights are rebuilt only on
request (`?weights=true`), from the nearest checkpoint. Replay, export and
import read files, so they are plain `def` handlers run in the thread pool.
"""

from __future__ import annotations

import base64
import logging
import math
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from dropviz.api.bodies import read_limited_body
from dropviz.api.deps import ManagerDep, RunDep, SettingsDep, UploadsDep
from dropviz.api.limits import check_layer_limits
from dropviz.api.schemas import RunConfig, RunOut, StepOut, StepRangeOut
from dropviz.datasets.catalogue import load_run_dataset
from dropviz.runs import history
from dropviz.runs.run import Run
from dropviz.runs.transfer import export_run, import_run
from dropviz.storage.archive import ArchiveError, RunArchive, metrics_csv, read_archive
from dropviz.storage.datasets import dataset_from_npz
from dropviz.training.config import IDX_DATASETS, TrainConfig, is_csv_dataset
from dropviz.training.data import Dataset

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/runs", tags=["history"])

MAX_RANGE_STEPS = 4096  # steps per playback request
MAX_RANGE_BYTES = 8 * 1024 * 1024  # packed mask bytes per playback request
ARCHIVE_UNPACK_FACTOR = 4  # an archive may unpack to this many times its size
# application/octet-stream too, for clients that send any file as bytes.
ZIP_MEDIA_TYPES = (
    "application/zip",
    "application/x-zip-compressed",
    "application/octet-stream",
)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@router.get(
    "/{run_id}/steps/{step}",
    responses={404: {"description": "The run has not recorded this step."}},
)
def read_step(
    run: RunDep,
    step: Annotated[int, Path(ge=0, description="The step, counted from 0.")],
    weights: Annotated[
        bool, Query(description="Also return the weights right after the step.")
    ] = False,
) -> StepOut:
    """Return one step's masks, loss and batch accuracy, and optionally weights.

    The weights are rebuilt from the nearest earlier checkpoint by re-running
    the recorded steps, at most DROPVIZ_CHECKPOINT_STEPS of them.
    """
    stored = history.read_steps(run, step, 1)[0]
    out = StepOut(
        step=step,
        epoch=stored.epoch,
        loss=_finite(stored.loss),
        batch_accuracy=_finite(stored.batch_accuracy),
        mask_scope=stored_scope(run),
        masks=[mask.tolist() for mask in stored.masks],
    )
    if weights:
        params = history.weights_after(run, step)
        out.weights = [w.tolist() for w in params.weights]
        out.biases = [b.tolist() for b in params.biases]
    return out


@router.get(
    "/{run_id}/steps",
    responses={404: {"description": "The range starts past the recorded steps."}},
)
def read_step_range(
    run: RunDep,
    first: Annotated[int, Query(ge=0, description="First step of the range.")] = 0,
    count: Annotated[
        int,
        Query(ge=1, le=MAX_RANGE_STEPS, description="Steps wanted; fewer may come."),
    ] = 256,
) -> StepRangeOut:
    """Return the masks and metrics of up to `count` steps from `first` on.

    A response stops early at the last recorded step or at 8 MiB of masks;
    `next_step` names where the next request starts.
    """
    recorded = history.recorded_step_count(run)
    recorder = history.require_recorder(run)
    record_bytes = recorder.layout.record_bytes
    count = min(count, recorded - first, max(1, MAX_RANGE_BYTES // record_bytes))
    if count < 1:
        raise history.StepNotRecordedError(
            f"Run {run.id} has recorded {recorded} steps; first = {first} is past them."
        )
    steps = history.read_steps(run, first, count)
    header_bytes = 16  # the step entry before the mask blocks
    end = first + count
    return StepRangeOut(
        run_id=run.id,
        first_step=first,
        step_count=count,
        next_step=end if end < recorded else None,
        layer_sizes=list(recorder.layout.layer_sizes),
        mask_scope=stored_scope(run),
        epochs=[s.epoch for s in steps],
        losses=[_finite(s.loss) for s in steps],
        batch_accuracies=[_finite(s.batch_accuracy) for s in steps],
        mask_rows=[s.mask_rows for s in steps],
        masks=[base64.b64encode(s.record[header_bytes:]).decode() for s in steps],
        max_mask_rows=recorder.layout.max_mask_rows,
    )


def stored_scope(run: Run) -> str:
    return history.require_recorder(run).layout.mask_scope


@router.get(
    "/{run_id}/metrics.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def read_metrics_csv(run: RunDep) -> Response:
    """Download the per-epoch metrics (without dropout) as CSV."""
    _, _, epochs = run.archive_state()
    filename = f"dropviz-{run.id}-metrics.csv"
    return Response(
        content=metrics_csv(epochs),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/{run_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def export_archive(run: RunDep) -> Response:
    """Download the run as one zip: config, metrics, steps, checkpoints, weights."""
    payload = export_run(run, history.require_recorder(run))
    logger.info("run exported: run_id=%s bytes=%d", run.id, len(payload))
    return Response(
        content=payload,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="dropviz-{run.id}.zip"'},
    )


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in ZIP_MEDIA_TYPES
            },
        }
    },
    responses={
        409: {"description": "max_stored_runs or max_state_bytes is reached."},
        413: {"description": "The body is larger than max_import_bytes."},
        415: {"description": "The Content-Type is not a zip or binary type."},
        422: {"description": "The archive is invalid or its steps do not re-run."},
    },
)
async def import_archive(
    request: Request, manager: ManagerDep, settings: SettingsDep, uploads: UploadsDep
) -> RunOut:
    """Recreate an exported run from its archive, sent as the raw body.

    The new run gets a new id. Its steps are re-run from the last checkpoint
    and checked against their records before it is listed.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    if media_type.lower() not in ZIP_MEDIA_TYPES:
        raise HTTPException(
            status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"Content-Type {media_type or None!r} is not supported; send the "
            "archive from GET /api/runs/{id}/export as the raw body with "
            "Content-Type: application/zip.",
        )
    limit = settings.max_import_bytes
    payload = await read_limited_body(
        request,
        limit,
        f"The archive is larger than max_import_bytes, {limit:,} bytes; raise "
        "DROPVIZ_MAX_IMPORT_BYTES on the server to import it.",
        "archive",
    )
    archive = await run_in_threadpool(
        _parse_archive, payload, len(payload) * ARCHIVE_UNPACK_FACTOR + 65_536
    )
    config = _archive_config(archive, settings)
    dataset = await run_in_threadpool(
        _archive_dataset, archive, config, settings, uploads
    )
    run = await run_in_threadpool(_import, manager, archive, dataset)
    return RunOut.model_validate(run.summary())


def _parse_archive(payload: bytes, max_unpacked_bytes: int) -> RunArchive:
    try:
        return read_archive(payload, max_unpacked_bytes)
    except ArchiveError as exc:
        raise _invalid_archive(str(exc)) from None


def _archive_config(archive: RunArchive, settings: SettingsDep) -> TrainConfig:
    values = archive.meta.get("config")
    if not isinstance(values, dict):
        raise _invalid_archive("run.json has no 'config' object")
    values = dict(values)
    if values.get("dataset") in IDX_DATASETS:
        values["data_dir"] = None  # read this server's own IDX folder
    try:
        config = RunConfig.model_validate(values)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", "config", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None
    check_layer_limits(config.hidden_sizes, settings, ("body", "config"))
    return config.to_train_config()


def _archive_dataset(
    archive: RunArchive, config: TrainConfig, settings: SettingsDep, uploads: UploadsDep
) -> tuple[TrainConfig, Dataset]:
    if not is_csv_dataset(config.dataset):
        return load_run_dataset(config, settings, uploads)
    if archive.dataset_npz is None:
        raise _invalid_archive(
            f"the run trained on uploaded data set {config.dataset!r}, but the "
            "archive has no dataset.npz"
        )
    try:
        return config, dataset_from_npz(config.dataset, archive.dataset_npz)
    except ValueError as exc:
        raise _invalid_archive(f"dataset.npz: {exc}") from None


def _import(
    manager: ManagerDep, archive: RunArchive, loaded: tuple[TrainConfig, Dataset]
) -> Run:
    train_config, dataset = loaded
    try:
        return import_run(manager, archive, train_config, dataset)
    except ArchiveError as exc:
        raise _invalid_archive(str(exc)) from None


def _invalid_archive(message: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=f"Invalid run archive: {message}.",
    )
