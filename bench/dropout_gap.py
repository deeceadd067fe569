"""Generalization gap on digits with and without dropout.

Trains scikit-learn's digits with hidden layers 256-256, momentum 0.9 and a
cosine schedule for 60 epochs, once with drop rates 0.2 (input) and 0.5
(hidden) and once without dropout, for several seeds. For each run it reports
the final train and test accuracy and loss, evaluated on the full network,
and the gap between train and test. Dropout should give the smaller gap.

Usage: python bench/dropout_gap.py [--seeds 3] [--epochs 60]
The last line of output is one JSON object with every run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

# One BLAS thread, as `dropviz serve` uses; it only takes effect before numpy loads.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

from dropviz.training.config import TrainConfig  # noqa: E402
from dropviz.training.trainer import Trainer  # noqa: E402

BASE = TrainConfig(
    dataset="digits",
    hidden_sizes=(256, 256),
    optimizer="momentum",
    momentum=0.9,
    learning_rate=0.003,
    lr_schedule="cosine",
    batch_size=8,
)
SETTINGS = {
    "dropout 0.2 / 0.5": {"input_drop_rate": 0.2, "hidden_drop_rate": 0.5},
    "no dropout": {"input_drop_rate": 0.0, "hidden_drop_rate": 0.0},
}


def train(config: TrainConfig) -> dict[str, float]:
    start = time.perf_counter()
    trainer = Trainer(config)
    while not trainer.done:
        trainer.step()
    metrics = trainer.evaluate()
    return {
        "train_accuracy": metrics.train_accuracy,
        "test_accuracy": metrics.test_accuracy,
        "accuracy_gap": metrics.train_accuracy - metrics.test_accuracy,
        "train_loss": metrics.train_loss,
        "test_loss": metrics.test_loss,
        "loss_gap": metrics.test_loss - metrics.train_loss,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..n-1 (3)")
    parser.add_argument("--epochs", type=int, default=60, help="epochs per run (60)")
    args = parser.parse_args()

    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    for seed in range(args.seeds):
        for name, rates in SETTINGS.items():
            config = replace(BASE, seed=seed, epochs=args.epochs, **rates)
            result = train(config)
            runs[name].append(result)
            print(f"seed {seed}, {name}: {json.dumps(result)}", flush=True)

    medians: dict[str, dict[str, float]] = {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in runs.items()
    }
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "config": BASE.to_dict() | {"epochs": args.epochs},
        "runs": runs,
        "medians": medians,
        "dropout_gap_smaller_every_seed": all(
            with_dropout["accuracy_gap"] < without["accuracy_gap"]
            for with_dropout, without in zip(
                runs["dropout 0.2 / 0.5"], runs["no dropout"], strict=True
            )
        ),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
