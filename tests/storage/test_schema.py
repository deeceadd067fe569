"""The run index schema: a new file, and the migration of a version-1 file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dropviz.storage.schema import SCHEMA_V1, SCHEMA_VERSION, SchemaError, open_database


def _write_version_1(path: Path, runs_dir: Path) -> None:
    """Write a version-1 index with one run, one epoch and one checkpoint file."""
    connection = sqlite3.connect(path)
    connection.executescript(SCHEMA_V1)
    connection.execute("INSERT INTO schema_version VALUES (1)")
    connection.execute(
        "INSERT INTO runs VALUES ('abc123', '2026-01-02T03:04:05+00:00', "
        "'{\"dataset\": \"moons\"}', 'paused', 40, NULL, NULL)"
    )
    connection.execute(
        "INSERT INTO epochs VALUES ('abc123', 0, 8, 0.5, 0.75, 0.6, 0.7)"
    )
    connection.commit()
    connection.close()
    checkpoints = runs_dir / "abc123" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "000000000032.npz").write_bytes(b"x" * 10)


def test_open_database_new_file_has_current_version(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "index.sqlite3", tmp_path / "runs")
    version = connection.execute("SELECT version FROM schema_version").fetchone()[0]
    assert version == SCHEMA_VERSION
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_open_database_migrates_version_1(tmp_path: Path) -> None:
    path, runs_dir = tmp_path / "index.sqlite3", tmp_path / "runs"
    _write_version_1(path, runs_dir)

    connection = open_database(path, runs_dir)

    version = connection.execute("SELECT version FROM schema_version").fetchone()[0]
    assert version == 2
    row = connection.execute(
        "SELECT id, status, step, updated_at, max_steps_per_second, latest_loss "
        "FROM runs"
    ).fetchone()
    assert row == ("abc123", "paused", 40, "2026-01-02T03:04:05+00:00", None, None)
    epochs = connection.execute("SELECT epoch, step, test_accuracy FROM epochs")
    assert epochs.fetchall() == [(0, 8, 0.7)]
    checkpoints = connection.execute("SELECT run_id, step, size_bytes FROM checkpoints")
    assert checkpoints.fetchall() == [("abc123", 32, 10)]


def test_open_database_migrated_file_opens_again(tmp_path: Path) -> None:
    path, runs_dir = tmp_path / "index.sqlite3", tmp_path / "runs"
    _write_version_1(path, runs_dir)
    open_database(path, runs_dir).close()
    connection = open_database(path, runs_dir)
    count = connection.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    assert count == 1


def test_open_database_newer_version_raises(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    open_database(path, tmp_path / "runs").close()
    connection = sqlite3.connect(path)
    connection.execute("UPDATE schema_version SET version = 99")
    connection.commit()
    connection.close()
    with pytest.raises(SchemaError, match="schema version 99"):
        open_database(path, tmp_path / "runs")
