"""Training speed of dropviz's numpy core against PyTorch on the CPU, one thread each.

Both run in this one process, in interleaved rounds, so that a noisy machine
slows them alike. For each network and batch size it times:

- compact: dropviz's default step, products on the kept units only;
- dense: dropviz's masked step with full-size matrices;
- per_example: dropviz with one mask per example (always dense);
- torch: `nn.Linear` + `nn.Dropout` with plain SGD, `torch.set_num_threads(1)`;
- bound: the compacted step's eight matrix products alone, on arrays of the
  kept sizes, which no implementation of that step can beat.

Usage: python bench/train_speed.py [--rounds 7] [--steps 30]
Needs the bench extra (`pip install -e '.[bench]'`, which pins torch 2.13.0).
The last line of output is one JSON object with every median and ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from dropviz.training.config import TrainConfig
from dropviz.training.data import Dataset
from dropviz.training.trainer import Trainer

INPUT_DROP = 0.2
HIDDEN_DROP = 0.5
N_TRAIN = 8192  # random MNIST-shaped examples; enough for any batch without reuse
NETWORKS = {
    "784-512-512-10": (784, (512, 512), 10),
    "64-128-128-10": (64, (128, 128), 10),
}
BATCH_SIZES = (64, 256)


def make_dataset(n_features: int, n_classes: int, rng: np.random.Generator) -> Dataset:
    x = rng.random((N_TRAIN, n_features), dtype=np.float32)
    y = rng.integers(0, n_classes, N_TRAIN)
    return Dataset(
        name="random",
        x_train=x,
        y_train=y,
        x_test=x[:256],
        y_test=y[:256],
        class_names=tuple(str(k) for k in range(n_classes)),
        input_shape=None,
        train_index=np.arange(N_TRAIN),
        test_index=np.arange(256),
    )


def dropviz_stepper(config: TrainConfig, dataset: Dataset) -> Callable[[], None]:
    trainer = Trainer(config, dataset)

    def step() -> None:
        if trainer.done:
            trainer.step_count = 0
        trainer.step()

    return step


def torch_stepper(
    n_features: int,
    hidden: tuple[int, ...],
    n_classes: int,
    dataset: Dataset,
    batch: int,
) -> Callable[[], None]:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = [torch.nn.Dropout(INPUT_DROP)]
    sizes = [n_features, *hidden]
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [
            torch.nn.Linear(n_in, n_out),
            torch.nn.ReLU(),
            torch.nn.Dropout(HIDDEN_DROP),
        ]
    layers.append(torch.nn.Linear(sizes[-1], n_classes))
    model = torch.nn.Sequential(*layers).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    x_all = torch.from_numpy(dataset.x_train)
    y_all = torch.from_numpy(dataset.y_train)
    generator = torch.Generator().manual_seed(0)
    state = {"order": torch.randperm(N_TRAIN, generator=generator), "position": 0}

    def step() -> None:
        # Shuffled mini-batches gathered by index, as the dropviz trainer does.
        if state["position"] + batch > N_TRAIN:
            state["order"] = torch.randperm(N_TRAIN, generator=generator)
            state["position"] = 0
        rows = state["order"][state["position"] : state["position"] + batch]
        state["position"] += batch
        x, y = x_all[rows], y_all[rows]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def bound_stepper(
    n_features: int,
    hidden: tuple[int, ...],
    n_classes: int,
    batch: int,
    rng: np.random.Generator,
) -> Callable[[], None]:
    """Time only the products of a compacted step with the expected kept sizes."""
    kept = [round(n_features * (1 - INPUT_DROP))]
    kept += [round(n * (1 - HIDDEN_DROP)) for n in hidden]
    kept.append(n_classes)
    weights = [
        rng.standard_normal((a, b)).astype(np.float32)
        for a, b in zip(kept[:-1], kept[1:], strict=True)
    ]
    inputs = [rng.standard_normal((batch, k)).astype(np.float32) for k in kept[:-1]]
    grads = [rng.standard_normal((batch, k)).astype(np.float32) for k in kept[1:]]

    def step() -> None:
        for h, w in zip(inputs, weights, strict=True):  # forward: one per layer
            h @ w
        for h, dz in zip(inputs, grads, strict=True):  # weight gradients: one per layer
            h.T @ dz
        for dz, w in list(zip(grads, weights, strict=True))[1:]:  # input gradients
            dz @ w.T

    return step


def time_steps(step: Callable[[], None], steps: int) -> float:
    """Return the median seconds per step over `steps` consecutive steps."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=7, help="interleaved rounds (default 7)"
    )
    parser.add_argument(
        "--steps", type=int, default=30, help="timed steps per round (default 30)"
    )
    args = parser.parse_args()

    threadpool_limits(limits=1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    pools = [
        (info["internal_api"], info.get("architecture"), info["num_threads"])
        for info in threadpool_info()
    ]
    print(f"numpy {np.__version__}, thread pools {pools}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores")

    results: dict[str, dict[str, float]] = {}
    for net_name, (n_features, hidden, n_classes) in NETWORKS.items():
        dataset = make_dataset(n_features, n_classes, rng)
        for batch in BATCH_SIZES:
            base = TrainConfig(
                hidden_sizes=hidden,
                input_drop_rate=INPUT_DROP,
                hidden_drop_rate=HIDDEN_DROP,
                learning_rate=0.01,
                batch_size=batch,
                epochs=1000,
            )
            steppers = {
                "compact": dropviz_stepper(base, dataset),
                "dense": dropviz_stepper(replace(base, compact=False), dataset),
                "per_example": dropviz_stepper(
                    replace(base, mask_scope="per-example"), dataset
                ),
                "torch": torch_stepper(n_features, hidden, n_classes, dataset, batch),
                "bound": bound_stepper(n_features, hidden, n_classes, batch, rng),
            }
            for step in steppers.values():  # warm up caches and allocators
                for _ in range(3):
                    step()

            samples: dict[str, list[float]] = {name: [] for name in steppers}
            for round_index in range(args.rounds):
                order = list(steppers)
                if round_index % 2:
                    order.reverse()
                for name in order:
                    samples[name].append(time_steps(steppers[name], args.steps))

            medians = {
                name: statistics.median(values) for name, values in samples.items()
            }
            row = {f"{name}_ms": 1000 * value for name, value in medians.items()}
            row["speedup_vs_torch"] = medians["torch"] / medians["compact"]
            row["dense_speedup_vs_torch"] = medians["torch"] / medians["dense"]
            row["per_example_speedup_vs_torch"] = (
                medians["torch"] / medians["per_example"]
            )
            row["share_of_bound"] = medians["bound"] / medians["compact"]
            key = f"{net_name} batch {batch}"
            results[key] = row
            print(
                f"{key:>26}: compact {row['compact_ms']:.3f} ms, "
                f"dense {row['dense_ms']:.3f}, "
                f"per-example {row['per_example_ms']:.3f}, "
                f"torch {row['torch_ms']:.3f}, bound {row['bound_ms']:.3f}; "
                f"{row['speedup_vs_torch']:.2f}x torch, "
                f"{100 * row['share_of_bound']:.0f}% of bound",
                flush=True,
            )
    summary = {"rounds": args.rounds, "steps": args.steps, "results": results}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
