"""Exception handlers: every failure becomes a 4xx with a readable `detail`.

Validation errors keep FastAPI's shape, a list of {loc, msg, type, input}, but
each `msg` names the field and the rejected value, and `input` is made
JSON-safe: a NaN or an infinity echoed back would otherwise make the error
response itself fail to serialize. A DatasetError (a missing or invalid data
file, or a bad CSV cell) gets the same shape and status 422.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dropviz.datasets.uploads import UploadLimitError, UploadNotFoundError
from dropviz.runs.history import NotStoredError, StepNotRecordedError
from dropviz.runs.manager import RunLimitError, RunNotFoundError
from dropviz.runs.states import RunStateError
from dropviz.storage.replay import ReplayError
from dropviz.training.errors import DatasetError

logger = logging.getLogger(__name__)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'nan', 'inf' or '-inf'
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _describe(error: dict[str, Any], content_type: str) -> dict[str, Any]:
    loc = [part for part in error.get("loc", ()) if part != "body"]
    field = ".".join(str(part) for part in loc) or "body"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    message = message.rstrip(".")
    entry = {
        "loc": list(error.get("loc", ())),
        "type": error.get("type"),
        "input": _json_safe(error.get("input")),
    }
    if error.get("type") == "json_invalid":
        # FastAPI puts the character offset of the syntax error in loc.
        reason = (error.get("ctx") or {}).get("error", "syntax error")
        position = loc[0] if loc else "?"
        entry["msg"] = (
            f"The request body is not valid JSON: {reason} at character {position}. "
            "Send a JSON object."
        )
    elif isinstance(error.get("input"), bytes):
        entry["input"] = None
        entry["msg"] = (
            f"The request body was sent as {content_type or 'no content type'}; "
            "send a JSON object with Content-Type: application/json."
        )
    elif error.get("type") == "missing":
        entry["msg"] = f"{field} is missing. {message}."
    elif error.get("type") == "extra_forbidden":
        entry["msg"] = f"{field} is not a known field; remove it or check its spelling."
    else:
        entry["msg"] = (
            f"{field} = {_short_json(error.get('input'))} is invalid: {message}."
        )
    return entry


def _short_json(value: Any) -> str:
    """Render a rejected value as the client wrote it: true, NaN, [1, 2]."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    content_type = request.headers.get("content-type", "")
    details = [_describe(dict(error), content_type) for error in exc.errors()]
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": details}
    )


async def _run_not_found(request: Request, exc: Exception) -> JSONResponse:
    run_id = exc.args[0] if exc.args else "?"
    return JSONResponse(
        status_code=status.HTTP_404_NOT_FOUND,
        content={"detail": f"Run {run_id!r} not found; GET /api/runs lists the runs."},
    )


async def _dataset_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DatasetError)
    logger.info(
        "dataset rejected: method=%s path=%s type=%s loc=%s",
        request.method,
        request.url.path,
        exc.kind,
        list(exc.loc),
    )
    entry = {
        "loc": list(exc.loc),
        "msg": exc.message,
        "type": exc.kind,
        "input": _json_safe(exc.value),
    }
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": [entry]}
    )


async def _upload_not_found(request: Request, exc: Exception) -> JSONResponse:
    name = exc.args[0] if exc.args else "?"
    return JSONResponse(
        status_code=status.HTTP_404_NOT_FOUND,
        content={
            "detail": f"Uploaded data set {name!r} not found; GET /api/datasets "
            "lists the data sets."
        },
    )


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT, content={"detail": str(exc)}
    )


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_404_NOT_FOUND, content={"detail": str(exc)}
    )


async def _replay_failed(request: Request, exc: Exception) -> JSONResponse:
    logger.error("replay failed: path=%s error=%s", request.url.path, exc)
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content={"detail": f"The run cannot be replayed here: {exc}."},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RunNotFoundError, _run_not_found)
    app.add_exception_handler(RunStateError, _conflict)
    app.add_exception_handler(RunLimitError, _conflict)
    app.add_exception_handler(DatasetError, _dataset_error)
    app.add_exception_handler(UploadNotFoundError, _upload_not_found)
    app.add_exception_handler(UploadLimitError, _conflict)
    app.add_exception_handler(StepNotRecordedError, _not_found)
    app.add_exception_handler(NotStoredError, _conflict)
    app.add_exception_handler(ReplayError, _replay_failed)
