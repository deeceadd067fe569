"""The run archive: one zip file that moves a run to another server.

Members:

    run.json              format version, config, state, epochs, layer sizes
    metrics.csv           per-epoch loss and accuracy without dropout
    steps.bin             the step file (stepfile.py), every step's masks
    checkpoints/<step>.npz   trainer states (training/state.py)
    weights.npz           the weights at the archived step: W0, b0, W1, ...
    dataset.npz           an uploaded CSV's splits; other data sets reload

`read_archive` accepts only these names and checks every size before it
reads, so an archive cannot write outside its run or expand past a bound.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dropviz.training.mlp import Params
from dropviz.training.records import EpochMetrics

ARCHIVE_FORMAT = 1
CHECKPOINT_NAME = re.compile(r"checkpoints/(\d{1,12})\.npz")
FIXED_MEMBERS = frozenset(
    {"run.json", "metrics.csv", "steps.bin", "weights.npz", "dataset.npz"}
)
METRIC_COLUMNS = (
    "epoch",
    "step",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
)


class ArchiveError(ValueError):
    """An archive that is not a valid dropviz run archive."""


@dataclass(frozen=True)
class RunArchive:
    """The contents of a run archive, as bytes and plain values."""

    meta: dict[str, Any]  # run.json
    step_records: bytes  # steps.bin
    checkpoints: dict[int, bytes]  # step -> .npz bytes
    dataset_npz: bytes | None


def weights_npz(layer_sizes: Sequence[int], params: Params) -> bytes:
    """Return weights as `.npz` bytes: layer_sizes, then W0, b0, W1, b1, ..."""
    arrays: dict[str, np.ndarray] = {"layer_sizes": np.array(layer_sizes)}
    for layer, (weight, bias) in enumerate(
        zip(params.weights, params.biases, strict=True)
    ):
        arrays[f"W{layer}"] = weight
        arrays[f"b{layer}"] = bias
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def metrics_csv(epochs: Sequence[EpochMetrics]) -> str:
    """Return per-epoch metrics as CSV text; a non-finite value is empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for metrics in epochs:
        row = [getattr(metrics, column) for column in METRIC_COLUMNS]
        writer.writerow("" if value != value else value for value in row)
    return buffer.getvalue()


def write_archive(
    meta: dict[str, Any],
    epochs: Sequence[EpochMetrics],
    step_file_bytes: bytes,
    checkpoints: dict[int, bytes],
    weights_npz: bytes,
    dataset_npz: bytes | None,
) -> bytes:
    """Return the zip bytes of one run."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "run.json", json.dumps({"format": ARCHIVE_FORMAT, **meta}, indent=2)
        )
        archive.writestr("metrics.csv", metrics_csv(epochs))
        archive.writestr("steps.bin", step_file_bytes)
        for step, payload in sorted(checkpoints.items()):
            archive.writestr(f"checkpoints/{step:012d}.npz", payload)
        archive.writestr("weights.npz", weights_npz)
        if dataset_npz is not None:
            archive.writestr("dataset.npz", dataset_npz)
    return buffer.getvalue()


def read_archive(payload: bytes, max_unpacked_bytes: int) -> RunArchive:
    """Parse and check an archive; raise ArchiveError naming what is wrong."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"the body is not a zip file: {exc}") from None
    with archive:
        infos = archive.infolist()
        unpacked = sum(info.file_size for info in infos)
        if unpacked > max_unpacked_bytes:
            raise ArchiveError(
                f"the archive unpacks to {unpacked:,} bytes; the limit is "
                f"{max_unpacked_bytes:,}"
            )
        names = [info.filename for info in infos]
        for name in names:
            if name not in FIXED_MEMBERS and not CHECKPOINT_NAME.fullmatch(name):
                raise ArchiveError(
                    f"unexpected member {name!r}; a run archive has run.json, "
                    "metrics.csv, steps.bin, weights.npz, checkpoints/<step>.npz "
                    "and, for an uploaded CSV, dataset.npz"
                )
        for required in ("run.json", "steps.bin"):
            if required not in names:
                raise ArchiveError(f"the archive has no {required}")
        try:
            meta = json.loads(archive.read("run.json"))
            step_records = archive.read("steps.bin")
            checkpoints = {
                int(match.group(1)): archive.read(name)
                for name in names
                if (match := CHECKPOINT_NAME.fullmatch(name))
            }
            dataset_npz = (
                archive.read("dataset.npz") if "dataset.npz" in names else None
            )
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
            raise ArchiveError(f"a member cannot be read: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ArchiveError(f"run.json is not valid JSON: {exc}") from None
    version = meta.get("format") if isinstance(meta, dict) else None
    if version != ARCHIVE_FORMAT:
        raise ArchiveError(
            f"run.json has format {version!r}; this server reads format "
            f"{ARCHIVE_FORMAT}"
        )
    return RunArchive(meta, step_records, checkpoints, dataset_npz)
