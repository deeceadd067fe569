"""The data set catalogue and CSV uploads.

`POST /api/datasets/csv` takes the CSV as the raw request body, so no
multipart parser is needed, and returns the name ("csv:<id>") that a run's
`dataset` field accepts.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from dropviz.api.bodies import read_limited_body
from dropviz.api.deps import SettingsDep, UploadsDep
from dropviz.api.schemas import DatasetOut
from dropviz.datasets.catalogue import CatalogueEntry, describe_upload, list_datasets
from dropviz.training.csv_table import parse_csv
from dropviz.training.data import DATASET_INFO

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/datasets", tags=["datasets"])

# Not text/plain: a foreign page can post that without a CORS preflight.
CSV_MEDIA_TYPES = ("text/csv",)


@router.get("")
def read_datasets(settings: SettingsDep, uploads: UploadsDep) -> list[DatasetOut]:
    """List the built-in data sets, then the uploads.

    `available` is false when an IDX data set's files are missing, and `hint`
    then names the folder and files that are expected.
    """
    return [_dataset_out(entry) for entry in list_datasets(settings, uploads)]


@router.post(
    "/csv",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
    responses={
        413: {"description": "The body is larger than max_csv_bytes."},
        415: {"description": "The Content-Type is not text/csv."},
    },
)
async def upload_csv(
    request: Request,
    settings: SettingsDep,
    uploads: UploadsDep,
    label_column: Annotated[
        str,
        Query(min_length=1, max_length=256, description="Name of the label column."),
    ] = "label",
    name: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            description="Title of the data set, shown in its description.",
        ),
    ] = "CSV upload",
) -> DatasetOut:
    """Parse a UTF-8 CSV body and store it as a data set for new runs.

    Every column except `label_column` must contain numbers. Runs standardize
    the features with the statistics of their training split.
    """
    _check_content_type(request.headers.get("content-type"))
    uploads.check_room(name)
    content = await _read_body(request, settings.max_csv_bytes)
    table = await run_in_threadpool(parse_csv, content, label_column)
    upload = uploads.add(name, table, len(content))
    return _dataset_out(describe_upload(upload))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(name: str, uploads: UploadsDep) -> Response:
    """Forget an uploaded data set; runs created from it keep their data."""
    if name in DATASET_INFO:
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail=f"{name!r} is a built-in data set and cannot be deleted; only "
            "uploaded data sets (csv:<id>) can.",
        )
    uploads.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _dataset_out(entry: CatalogueEntry) -> DatasetOut:
    info = entry.info
    return DatasetOut(
        name=info.name,
        description=info.description,
        n_features=info.n_features,
        n_classes=info.n_classes,
        input_shape=list(info.input_shape) if info.input_shape else None,
        kind=info.kind,
        available=entry.available,
        hint=entry.hint,
    )


def _check_content_type(content_type: str | None) -> None:
    media_type, _, parameters = (content_type or "").partition(";")
    charset = ""
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media_type.strip().lower() not in CSV_MEDIA_TYPES:
        raise HTTPException(
            status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"Content-Type {content_type!r} is not supported; send the CSV "
            "as the raw request body with Content-Type: text/csv.",
        )
    if charset not in ("", "utf-8", "utf8"):
        raise HTTPException(
            status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"charset {charset!r} is not supported; save the CSV as UTF-8 "
            "and send Content-Type: text/csv; charset=utf-8.",
        )


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """Read the body, stopping with 413 as soon as it passes `max_bytes`."""
    return await read_limited_body(
        request,
        max_bytes,
        f"The CSV is larger than max_csv_bytes, {max_bytes:,} bytes; upload "
        "a smaller file, or raise DROPVIZ_MAX_CSV_BYTES on the server.",
        "CSV",
    )
