"""Evaluation jobs: ensemble inference on a snapshot of a run's weights.

A job copies the weights under the run's lock, so training may go on while it
computes, and runs in its own thread. It reports progress to a callback and
stops at the next check when cancelled.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from dropviz.training import dropout
from dropviz.training.ensemble import (
    MC_GRID,
    EvaluationCancelled,
    Network,
    RuleScore,
    exact_ensemble,
    masked_logits,
    mc_curve,
    mc_spread,
    mc_statistics,
    sampled_logits,
    softmax,
    weight_scaling_logits,
)
from dropviz.training.mlp import forward

logger = logging.getLogger(__name__)

PROGRESS_STEP = 0.05  # report progress at most every 5 percentage points

DROPCONNECT_NOTE = (
    "For DropConnect, weight scaling replaces each weight by its mean and drops "
    "its variance, so it only approximates the ensemble; MC averaging samples "
    "weight masks and converges to the true ensemble mean as k grows."
)


class JobStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True)
class EvaluationRequest:
    rule: str  # "weight_scaling", "mc" or "exact"
    split: str = "test"
    ks: tuple[int, ...] = MC_GRID
    repeats: int = 5
    seed: int = 0
    layers: tuple[int, ...] | None = None


@dataclass
class EvaluationJob:
    """One evaluation: its request, progress, and result once done."""

    run_id: str
    step: int  # steps the run had completed when its weights were copied
    request: EvaluationRequest
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: JobStatus = JobStatus.RUNNING
    progress: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "step": self.step,
            "rule": self.request.rule,
            "status": self.status.value,
            "progress": self.progress,
            "result": self.result,
            "error": self.error,
        }


def start_job(
    job: EvaluationJob,
    network: Network,
    x: np.ndarray,
    labels: np.ndarray,
    on_progress: Callable[[EvaluationJob], None],
) -> None:
    """Run `job` in a daemon thread and call `on_progress` at each reported change."""

    def report(share: float) -> None:
        if share >= 1.0 or share - job.progress >= PROGRESS_STEP:
            job.progress = round(share, 4)
            on_progress(job)

    def work() -> None:
        try:
            job.result = evaluate(
                network, x, labels, job.request, report, job._cancel.is_set
            )
            job.status = JobStatus.DONE
            job.progress = 1.0
        except EvaluationCancelled:
            job.status = JobStatus.CANCELLED
            logger.info("evaluation cancelled: run_id=%s job_id=%s", job.run_id, job.id)
        except Exception as exc:
            job.status = JobStatus.FAILED
            job.error = f"{type(exc).__name__}: {exc}"
            logger.exception(
                "evaluation failed: run_id=%s job_id=%s", job.run_id, job.id
            )
        finally:
            job._done.set()
            on_progress(job)

    threading.Thread(target=work, name=f"evaluation-{job.id}", daemon=True).start()


def evaluate(
    network: Network,
    x: np.ndarray,
    labels: np.ndarray,
    request: EvaluationRequest,
    progress: Callable[[float], None],
    cancelled: Callable[[], bool],
) -> dict[str, Any]:
    """Apply the requested rule; weight scaling is always included as the reference."""
    ws_probabilities = softmax(weight_scaling_logits(network, x).astype(np.float64))
    reference = ws_probabilities.argmax(axis=1)
    result: dict[str, Any] = {
        "split": request.split,
        "n_examples": int(len(labels)),
        "labels": labels.tolist(),
        "weight_scaling": _score(ws_probabilities, labels, reference),
        "note": DROPCONNECT_NOTE if network.variant == "dropconnect" else None,
    }

    if request.rule == "mc":
        rng = np.random.default_rng(request.seed)
        curve = mc_curve(
            network, x, labels, request.ks, request.repeats, rng, progress, cancelled
        )
        mc: dict[str, Any] = {
            "ks": curve.ks,
            "repeats": request.repeats,
            "seed": request.seed,
        }
        for name, errors, agreements in (
            ("arithmetic", curve.arithmetic_errors, curve.arithmetic_agreements),
            ("geometric", curve.geometric_errors, curve.geometric_agreements),
        ):
            error_mean, error_std = mc_spread(errors)
            agreement_mean, _ = mc_spread(agreements)
            mc[name] = {
                "error_mean": error_mean,
                "error_std": error_std,
                "agreement_mean": agreement_mean,
                "final": _score(curve.probabilities[name], labels, reference),
            }
        result["mc"] = mc
    elif request.rule == "exact":
        layers = list(request.layers) if request.layers is not None else None
        exact = exact_ensemble(network, x, layers, progress, cancelled)
        result["exact"] = {
            "layers": exact.layers,
            "n_masks": exact.n_masks,
            "arithmetic": _score(exact.arithmetic, labels, reference),
            "geometric": _score(exact.geometric, labels, reference),
            # exp of the P-weighted mean log-probability: its classes sum to
            # less than 1, which is why the normalized form is the one to use.
            "unnormalized_geometric_total": float(
                exact.unnormalized_geometric.sum(axis=1).mean()
            ),
        }
    progress(1.0)
    return result


def _score(
    probabilities: np.ndarray, labels: np.ndarray, reference: np.ndarray
) -> dict[str, Any]:
    score = RuleScore.of(probabilities, labels, reference)
    return {
        "accuracy": score.accuracy,
        "error": 1.0 - score.accuracy,
        "log_loss": score.log_loss,
        "agreement_with_weight_scaling": score.agreement,
        "predicted": probabilities.argmax(axis=1).tolist(),
        "confidence": [round(float(p), 5) for p in probabilities.max(axis=1)],
    }


@dataclass(frozen=True)
class PredictRequest:
    """Predictions of the ensemble and of single sub-networks on given points."""

    points: np.ndarray  # (n_points, n_features) in the model's feature space
    k: int = 50
    seed: int = 0
    subnetworks: int = 0  # freshly sampled sub-networks to report one by one
    hidden_units: bool = False  # also return each hidden unit's activation


def predict(
    network: Network,
    request: PredictRequest,
    last_masks: list[np.ndarray] | None,
    step: int,
) -> dict[str, Any]:
    """Return weight scaling's and MC's probabilities, MC's uncertainty, and the
    predictions of the last trained and of freshly sampled sub-networks."""
    x = request.points.astype(network.params.weights[0].dtype)
    rng = np.random.default_rng(request.seed)
    statistics = mc_statistics(network, x, request.k, rng)
    members: list[dict[str, Any]] = []
    if last_masks is not None:
        members.append(
            {
                "source": "last_trained",
                "step": step - 1,
                "probabilities": _rounded(
                    softmax(masked_logits(network, x, last_masks))
                ),
            }
        )
    for index in range(request.subnetworks):
        logits = sampled_logits(network, x, rng).astype(np.float64)
        members.append(
            {
                "source": "sampled",
                "index": index,
                "probabilities": _rounded(softmax(logits)),
            }
        )
    hidden: list[list[list[float]]] | None = None
    if request.hidden_units:
        # The deterministic (weight-scaled) network's activations, one list of
        # points per unit, for per-unit thumbnails.
        scales = dropout.evaluation_scales(network.keep_probs, x.dtype, network.scaling)
        cache = forward(network.params, x, network.activation, scales)
        hidden = [_rounded(output.T) for output in cache.hidden_outputs]
    return {
        "n_points": int(len(x)),
        "hidden_activations": hidden,
        "weight_scaling": _rounded(softmax(weight_scaling_logits(network, x))),
        "mc": {
            "k": request.k,
            "seed": request.seed,
            "mean": _rounded(statistics.mean),
            "geometric": _rounded(statistics.geometric),
            "variance": [round(float(v), 6) for v in statistics.variance],
            "entropy": [round(float(v), 6) for v in statistics.entropy],
        },
        "subnetworks": members,
    }


def _rounded(values: np.ndarray) -> list[list[float]]:
    # Five decimals keep the JSON of a 100 x 100 grid near a megabyte.
    return np.round(values.astype(np.float64), 5).tolist()  # type: ignore[no-any-return]
