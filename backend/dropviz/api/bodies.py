"""Raw request bodies with a size limit, for uploads that are not JSON."""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request, status
from starlette.requests import ClientDisconnect

logger = logging.getLogger(__name__)


async def read_limited_body(
    request: Request, max_bytes: int, too_large_detail: str, what: str
) -> bytes:
    """Read the body, stopping with 413 as soon as it passes `max_bytes`.

    `what` names the body in messages, such as "CSV" or "archive".
    """
    too_large = HTTPException(
        status_code=status.HTTP_413_CONTENT_TOO_LARGE, detail=too_large_detail
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large

    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        logger.info(
            "%s upload aborted: the client disconnected after %d bytes", what, size
        )
        raise HTTPException(
            status_code=status.HTTP_400_BAD_REQUEST,
            detail=f"The client disconnected before the {what} body was complete.",
        ) from None
    return b"".join(chunks)
