"""Measure the disk use and training cost of storing a 100,000-step run.

Trains a 64-128-128-10 network on digits (the dashboard's default run, with
the epochs raised to reach the step count) twice in this process: once
with a RunStore in a temporary folder, once without. It reports the bytes
of the step file, the checkpoints and the run index, and the training time
of both runs, so the cost of the storage writer shows. The last line of
output is one JSON object.

    .venv/bin/python bench/storage_size.py [--steps 100000] [--checkpoint-steps 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from dropviz.runs.manager import RunManager, StoragePolicy
from dropviz.runs.run import Run
from dropviz.runs.states import FINAL_STATES
from dropviz.storage.store import DATABASE_NAME, RunStore
from dropviz.training.config import TrainConfig

STEPS_PER_EPOCH = 169  # digits: 1,347 training images in batches of 8


def train(manager: RunManager, config: TrainConfig, steps: int) -> tuple[Run, float]:
    """Train a new run to completion; return it and the seconds it took."""
    run = manager.create(config)
    started = time.perf_counter()
    manager.start(run.id)
    while run.status not in FINAL_STATES:
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if run.trainer.step_count < steps:
        raise RuntimeError(f"run ended as {run.status} at {run.trainer.step_count}")
    return run, seconds


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="steps to train")
    parser.add_argument(
        "--checkpoint-steps", type=int, default=1000, help="steps between checkpoints"
    )
    args = parser.parse_args()
    threadpool_limits(limits=1)  # as the server does

    epochs = -(-args.steps // STEPS_PER_EPOCH)
    config = TrainConfig(hidden_sizes=(128, 128), epochs=epochs)
    steps = epochs * STEPS_PER_EPOCH
    print(f"training {steps} steps of 64-128-128-10, twice")

    _, seconds_without = train(RunManager(1, 100), config, steps)
    print(f"without storage: {seconds_without:.1f} s")

    with tempfile.TemporaryDirectory() as folder:
        state_dir = Path(folder)
        store = RunStore(state_dir)
        policy = StoragePolicy(checkpoint_steps=args.checkpoint_steps)
        manager = RunManager(1, 100, store, policy)
        run, seconds_with = train(manager, config, steps)
        store.writer.sync()
        print(f"with storage: {seconds_with:.1f} s")

        run_dir = store.run_dir(run.id)
        checkpoint_files = list((run_dir / "checkpoints").glob("*.npz"))
        result = {
            "steps": run.trainer.step_count,
            "layer_sizes": run.trainer.layer_sizes,
            "checkpoint_steps": args.checkpoint_steps,
            "record_bytes": store.step_file(run.id).layout.record_bytes,
            "step_file_bytes": (run_dir / "steps.bin").stat().st_size,
            "checkpoints": len(checkpoint_files),
            "checkpoint_bytes": sum(p.stat().st_size for p in checkpoint_files),
            "index_bytes": sum(
                p.stat().st_size for p in state_dir.glob(DATABASE_NAME + "*")
            ),
            "total_bytes": folder_bytes(state_dir),
            "seconds_without_storage": round(seconds_without, 2),
            "seconds_with_storage": round(seconds_with, 2),
            "writer_full_waits": store.writer.full_waits,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        }
        result["bytes_per_step"] = round(result["total_bytes"] / result["steps"], 1)
        store.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
