"""The SQLite schema of the run index, its version table and its migrations.

The database contains one row per run (config, state, position, latest
metrics), the per-epoch metrics and the index of checkpoint files. Bulk data
(every step's masks, the checkpoints themselves) lives in files beside it.
`open_database` brings a file of any older version up to SCHEMA_VERSION, one
migration function per version, each in its own transaction.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2

# Version 1 indexed checkpoints only by their file names, had no latest
# metrics, and did not record the training pace.
SCHEMA_V1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    step INTEGER NOT NULL,
    diverged_step INTEGER,
    error TEXT
);
CREATE TABLE epochs (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    step INTEGER NOT NULL,
    train_loss REAL,
    train_accuracy REAL,
    test_loss REAL,
    test_accuracy REAL,
    PRIMARY KEY (run_id, epoch)
);
"""


def _migrate_1_to_2(connection: sqlite3.Connection, runs_dir: Path) -> None:
    """Add the checkpoint index, latest metrics and pace; index existing files."""
    _execute_script(
        connection,
        """
        ALTER TABLE runs ADD COLUMN updated_at TEXT;
        ALTER TABLE runs ADD COLUMN max_steps_per_second REAL;
        ALTER TABLE runs ADD COLUMN latest_loss REAL;
        ALTER TABLE runs ADD COLUMN latest_accuracy REAL;
        CREATE TABLE checkpoints (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL,
            PRIMARY KEY (run_id, step)
        );
        UPDATE runs SET updated_at = created_at;
        """,
    )
    # Version 1 named checkpoint files runs/<id>/checkpoints/<step>.npz.
    run_ids = [row[0] for row in connection.execute("SELECT id FROM runs")]
    for run_id in run_ids:
        folder = runs_dir / run_id / "checkpoints"
        for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
            if path.stem.isdigit():
                connection.execute(
                    "INSERT OR IGNORE INTO checkpoints VALUES (?, ?, ?)",
                    (run_id, int(path.stem), path.stat().st_size),
                )


# MIGRATIONS[v] turns a version-v database into version v + 1.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection, Path], None]] = {
    1: _migrate_1_to_2,
}


class SchemaError(RuntimeError):
    """A database that this version of dropviz cannot read."""


def open_database(path: Path, runs_dir: Path) -> sqlite3.Connection:
    """Open or create the run index at `path` and migrate it to SCHEMA_VERSION.

    The connection uses WAL mode, so readers never wait for the writer. It may
    be used from any thread, and callers serialize access with their own lock.
    Raises SchemaError for a database newer than this code.
    """
    # isolation_level=None: transactions are explicit BEGIN ... COMMIT below.
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode loses no committed data on a process crash, only on an
    # OS crash or power loss (the SQLite documentation on PRAGMA synchronous).
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")
    # Without a limit the WAL file keeps its largest size, about 4 MB after
    # SQLite's automatic checkpoint at 1,000 pages.
    connection.execute("PRAGMA journal_size_limit = 1048576")

    has_table = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    created = not has_table
    if created:
        with _transaction(connection):
            _execute_script(connection, SCHEMA_V1)
            connection.execute("INSERT INTO schema_version VALUES (1)")
    version = int(
        connection.execute("SELECT version FROM schema_version").fetchone()[0]
    )
    if version > SCHEMA_VERSION:
        connection.close()
        raise SchemaError(
            f"the run index {path} has schema version {version}, newer than "
            f"this dropviz's {SCHEMA_VERSION}; upgrade dropviz or point "
            "DROPVIZ_STATE_DIR at another folder"
        )
    while version < SCHEMA_VERSION:
        with _transaction(connection):
            MIGRATIONS[version](connection, runs_dir)
            connection.execute("UPDATE schema_version SET version = ?", (version + 1,))
        # A new file is made at version 1 and migrated like any other.
        logger.log(
            logging.DEBUG if created else logging.INFO,
            "run index migrated: path=%s from_version=%d to_version=%d",
            path,
            version,
            version + 1,
        )
        version += 1
    return connection


def _execute_script(connection: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it commits the open transaction first, so a failed
    # migration would leave a half-migrated file.
    for statement in script.split(";"):
        if statement.strip():
            connection.execute(statement)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._connection.execute("COMMIT" if kind is None else "ROLLBACK")
