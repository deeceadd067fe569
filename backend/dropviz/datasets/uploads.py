"""Uploaded CSV data sets, kept in the server's memory.

NOTE: uploads live only in memory in this version, so a restart loses them,
and the store keeps at most `max_count` of them. Runs already created keep
their own copy of the data and survive the deletion of their upload.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from dropviz.training.csv_table import LabeledTable

logger = logging.getLogger(__name__)


class UploadNotFoundError(KeyError):
    """No uploaded data set has the requested name."""


class UploadLimitError(Exception):
    """Storing one more upload would pass `max_uploaded_datasets`."""


@dataclass(frozen=True)
class Upload:
    """One uploaded CSV: its data set name ("csv:<id>"), title and parsed table."""

    name: str
    title: str
    table: LabeledTable
    size_bytes: int
    created_at: datetime


class UploadStore:
    """A bounded, thread-safe registry of uploads, ordered by upload time."""

    def __init__(self, max_count: int) -> None:
        self.max_count = max_count
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def add(self, title: str, table: LabeledTable, size_bytes: int) -> Upload:
        upload = Upload(
            name=f"csv:{uuid.uuid4().hex[:12]}",
            title=title,
            table=table,
            size_bytes=size_bytes,
            created_at=datetime.now(UTC),
        )
        with self._lock:
            self._check_room(title)
            self._uploads[upload.name] = upload
        logger.info(
            "dataset uploaded: name=%s title=%r rows=%d features=%d classes=%d "
            "bytes=%d",
            upload.name,
            title,
            table.n_rows,
            len(table.feature_names),
            len(table.class_names),
            size_bytes,
        )
        return upload

    def check_room(self, title: str) -> None:
        """Raise UploadLimitError if the store is full, before parsing an upload."""
        with self._lock:
            self._check_room(title)

    def _check_room(self, title: str) -> None:
        if len(self._uploads) >= self.max_count:
            raise UploadLimitError(
                f"Cannot store the upload {title!r}: {len(self._uploads)} uploaded "
                f"data sets are stored and max_uploaded_datasets is "
                f"{self.max_count}. Delete one first with DELETE "
                "/api/datasets/{name}, or raise DROPVIZ_MAX_UPLOADED_DATASETS."
            )

    def get(self, name: str) -> Upload:
        with self._lock:
            upload = self._uploads.get(name)
        if upload is None:
            raise UploadNotFoundError(name)
        return upload

    def list(self) -> list[Upload]:
        with self._lock:
            return list(self._uploads.values())

    def delete(self, name: str) -> None:
        with self._lock:
            if self._uploads.pop(name, None) is None:
                raise UploadNotFoundError(name)
        logger.info("dataset deleted: name=%s", name)
