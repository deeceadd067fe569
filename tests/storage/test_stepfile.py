"""Step files: fixed-size records, padded per-example masks, crash cut-off."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dropviz.storage.stepfile import StepFile, StepFileError, StepLayout, append_records
from dropviz.training.config import TrainConfig
from dropviz.training.trainer import Trainer

# 75 training examples in batches of 10: the eighth step of each epoch has 5.
MOONS = TrainConfig(dataset="moons", n_samples=100, hidden_sizes=(12,), batch_size=10)


def _layout(trainer: Trainer, scope: str, rows: int) -> StepLayout:
    return StepLayout(tuple(trainer.layer_sizes), scope, rows)


@pytest.mark.parametrize(
    "changes, scope, rows",
    [
        ({}, "per-step", 1),
        ({"mask_scope": "per-example"}, "per-example", 10),
        ({"variant": "dropconnect"}, "weights", 0),
    ],
)
def test_step_file_round_trips_masks(
    tmp_path: Path, changes: dict[str, str], scope: str, rows: int
) -> None:
    trainer = Trainer(replace(MOONS, **changes))  # type: ignore[arg-type]
    layout = _layout(trainer, scope, rows)
    step_file = StepFile.create(tmp_path / "steps.bin", layout)
    records = [trainer.step() for _ in range(9)]
    append_records(step_file.path, [layout.encode(r) for r in records])

    reopened = StepFile.open(step_file.path)
    assert reopened.step_count == 9
    assert reopened.layout == layout
    for record in records:
        stored = reopened.read(record.step)
        assert stored.epoch == record.epoch
        assert stored.loss == np.float32(record.loss)
        assert stored.batch_accuracy == np.float32(record.batch_accuracy)
        expected = record.weight_masks if record.weight_masks else record.masks
        for mine, theirs in zip(stored.masks, expected, strict=True):
            assert np.array_equal(mine.reshape(theirs.shape), theirs)


def test_step_file_short_batch_keeps_its_rows(tmp_path: Path) -> None:
    trainer = Trainer(replace(MOONS, mask_scope="per-example"))
    layout = _layout(trainer, "per-example", 10)
    step_file = StepFile.create(tmp_path / "steps.bin", layout)
    records = [trainer.step() for _ in range(8)]
    append_records(step_file.path, [layout.encode(r) for r in records])
    last = step_file.read(7)
    assert last.mask_rows == 5
    assert last.masks[0].shape == (5, 2)


def test_open_cuts_partial_last_record(tmp_path: Path) -> None:
    trainer = Trainer(MOONS)
    layout = _layout(trainer, "per-step", 1)
    step_file = StepFile.create(tmp_path / "steps.bin", layout)
    encoded = [layout.encode(trainer.step()) for _ in range(3)]
    append_records(step_file.path, [*encoded, encoded[0][:7]])  # a torn write
    assert StepFile.open(step_file.path).step_count == 3
    size = step_file.path.stat().st_size
    assert size == step_file.header_bytes + 3 * layout.record_bytes


def test_open_wrong_magic_raises(tmp_path: Path) -> None:
    path = tmp_path / "steps.bin"
    path.write_bytes(b"NOPE" + bytes(60))
    with pytest.raises(StepFileError, match="magic"):
        StepFile.open(path)


def test_read_past_end_raises(tmp_path: Path) -> None:
    trainer = Trainer(MOONS)
    step_file = StepFile.create(tmp_path / "steps.bin", _layout(trainer, "per-step", 1))
    with pytest.raises(StepFileError, match="has 0 steps"):
        step_file.read(0)


def test_record_size_of_benchmark_network() -> None:
    layout = StepLayout((64, 128, 128, 10), "per-step", 1)
    # 16-byte entry, then 8 + 16 + 16 bytes of masks.
    assert layout.record_bytes == 56
