"""Inference rules that combine the sub-networks a dropout run has trained.

The shared weights define an ensemble of every sub-network the masks can
select. This module predicts with that ensemble in three ways:

- weight scaling: one deterministic pass, each layer's input multiplied by its
  keep probability (classic scaling) or nothing (inverted scaling, which did
  the multiplying in training);
- Monte Carlo (MC): average k sampled sub-networks, either the arithmetic mean
  of their class probabilities or the normalized geometric mean, which is the
  softmax of their mean logits;
- exact enumeration: every mask of the enumerated layers with its probability,
  for at most `MAX_ENUMERATED_UNITS` droppable units.

A sampled sub-network is one set of masks applied to every example, so each
draw is a real member of the ensemble. Memory stays bounded for any k: MC keeps
running sums of shape (n_examples, n_classes), and enumeration walks the masks
in chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dropviz.training import dropout
from dropviz.training.config import Activation, Scaling
from dropviz.training.mlp import Params, forward

MAX_ENUMERATED_UNITS = 16
ENUMERATION_CHUNK_ELEMENTS = 4_000_000  # floats per chunk of stacked activations
MC_GRID = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200)

ProgressCallback = Callable[[float], None]  # receives the finished share, 0 to 1


class EvaluationCancelled(Exception):
    """The caller asked the evaluation to stop."""


@dataclass(frozen=True)
class Network:
    """A run's weights, activation and masking scheme, as the rules use them."""

    params: Params
    activation: Activation
    keep_probs: list[float]  # per masked unit layer (input first)
    scaling: Scaling
    variant: str  # "dropout" or "dropconnect"


@dataclass
class RuleScore:
    """Accuracy, log-loss and agreement of one set of predicted probabilities."""

    accuracy: float
    log_loss: float
    agreement: float  # share of examples whose predicted class equals weight scaling's

    @classmethod
    def of(
        cls, probabilities: np.ndarray, labels: np.ndarray, reference: np.ndarray
    ) -> RuleScore:
        predicted = probabilities.argmax(axis=1)
        chosen = probabilities[np.arange(len(labels)), labels]
        log_loss = float(-np.mean(np.log(np.clip(chosen, 1e-12, None))))
        return cls(
            accuracy=float(np.mean(predicted == labels)),
            log_loss=log_loss,
            agreement=float(np.mean(predicted == reference)),
        )


@dataclass
class McCurve:
    """Test error of MC averaging as k grows, over independent repeats."""

    ks: list[int]
    arithmetic_errors: np.ndarray  # (repeats, len(ks))
    geometric_errors: np.ndarray  # (repeats, len(ks))
    arithmetic_agreements: np.ndarray  # (repeats, len(ks))
    geometric_agreements: np.ndarray  # (repeats, len(ks))
    probabilities: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # last repeat, k max


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return result


def weight_scaling_logits(network: Network, x: np.ndarray) -> np.ndarray:
    """Return the deterministic network's logits: (n_examples, n_classes)."""
    scales = dropout.evaluation_scales(network.keep_probs, x.dtype, network.scaling)
    return forward(network.params, x, network.activation, scales).logits


def sampled_logits(
    network: Network, x: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Return the logits of one freshly sampled sub-network on every example."""
    sizes = _layer_sizes(network)
    if network.variant == "dropconnect":
        masks = dropout.sample_weight_masks(rng, sizes, network.keep_probs)
        weight_scales = dropout.mask_scales(
            masks, network.keep_probs, x.dtype, network.scaling
        )
        return forward(
            network.params, x, network.activation, None, weight_scales
        ).logits
    masks = dropout.sample_masks(rng, sizes, network.keep_probs, "per-step", 1)
    scales = dropout.mask_scales(masks, network.keep_probs, x.dtype, network.scaling)
    return forward(network.params, x, network.activation, scales).logits


def mc_curve(
    network: Network,
    x: np.ndarray,
    labels: np.ndarray,
    ks: Sequence[int],
    repeats: int,
    rng: np.random.Generator,
    progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> McCurve:
    """Measure MC averaging at every k of `ks` (ascending), `repeats` times.

    Each repeat draws max(ks) sub-networks once and reads the running means at
    each k, so the errors at different k of one repeat share their first draws,
    as in a growing ensemble.
    """
    ks = sorted(set(ks))
    reference = weight_scaling_logits(network, x).argmax(axis=1)
    shape = (repeats, len(ks))
    curve = McCurve(
        list(ks), np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape)
    )
    total_draws = repeats * ks[-1]
    for repeat in range(repeats):
        probability_sum = np.zeros((len(labels), network.params.weights[-1].shape[1]))
        logit_sum = np.zeros_like(probability_sum)
        column = 0
        for draw in range(1, ks[-1] + 1):
            if cancelled is not None and cancelled():
                raise EvaluationCancelled
            logits = sampled_logits(network, x, rng).astype(np.float64)
            probability_sum += softmax(logits)
            logit_sum += logits
            if draw == ks[column]:
                arithmetic = probability_sum / draw
                geometric = softmax(logit_sum / draw)
                curve.arithmetic_errors[repeat, column] = np.mean(
                    arithmetic.argmax(1) != labels
                )
                curve.geometric_errors[repeat, column] = np.mean(
                    geometric.argmax(1) != labels
                )
                curve.arithmetic_agreements[repeat, column] = np.mean(
                    arithmetic.argmax(1) == reference
                )
                curve.geometric_agreements[repeat, column] = np.mean(
                    geometric.argmax(1) == reference
                )
                column += 1
            if progress is not None:
                progress((repeat * ks[-1] + draw) / total_draws)
        curve.probabilities = {
            "arithmetic": probability_sum / ks[-1],
            "geometric": softmax(logit_sum / ks[-1]),
        }
    return curve


def enumerable_layers(network: Network, layers: Sequence[int] | None) -> list[int]:
    """Return the unit layers to enumerate: those given, or every one with dropout."""
    if layers is None:
        return [k for k, keep in enumerate(network.keep_probs) if keep < 1.0]
    for layer in layers:
        if not 0 <= layer < len(network.keep_probs):
            last = len(network.keep_probs) - 1
            raise ValueError(f"layer {layer} has no mask; choose from 0 to {last}")
    return sorted(set(layers))


def check_enumerable(network: Network, layers: Sequence[int] | None) -> list[int]:
    """Return the layers to enumerate, or raise ValueError saying why it cannot."""
    if network.variant != "dropout":
        raise ValueError("exact enumeration covers unit dropout only, not DropConnect")
    chosen = enumerable_layers(network, layers)
    if not chosen:
        raise ValueError(
            "no layer to enumerate: the run has no dropout, or layers is empty; "
            "name at least one unit layer"
        )
    sizes = _layer_sizes(network)
    n_units = sum(sizes[layer] for layer in chosen)
    if n_units > MAX_ENUMERATED_UNITS:
        raise ValueError(
            f"layers {chosen} have {n_units} droppable units; exact enumeration "
            f"handles at most {MAX_ENUMERATED_UNITS} "
            f"({2**MAX_ENUMERATED_UNITS:,} masks); choose fewer layers or use MC"
        )
    return chosen


def _layer_sizes(network: Network) -> list[int]:
    weights = network.params.weights
    return [weights[0].shape[0]] + [w.shape[1] for w in weights]


@dataclass
class ExactResult:
    """The ensemble over every mask of the enumerated layers."""

    layers: list[int]
    n_masks: int
    arithmetic: np.ndarray  # sum of P(m) * softmax(logits_m): (n_examples, n_classes)
    geometric: (
        np.ndarray
    )  # softmax of sum of P(m) * logits_m, the normalized geometric mean
    unnormalized_geometric: np.ndarray  # exp of sum of P(m) * log softmax(logits_m)


def exact_ensemble(
    network: Network,
    x: np.ndarray,
    layers: Sequence[int] | None = None,
    progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ExactResult:
    """Average over all 2^N masks of the enumerated layers, weighted by probability.

    Layers with dropout that are not enumerated use weight scaling. Runs in
    float64 whatever the weights' dtype, so the identities it is tested
    against hold to about 1e-12.
    """
    chosen = check_enumerable(network, layers)
    sizes = _layer_sizes(network)
    n_units = sum(sizes[layer] for layer in chosen)

    params = network.params.astype(np.float64)
    x64 = x.astype(np.float64)
    n_examples = len(x64)
    n_classes = params.weights[-1].shape[1]
    n_masks = 2**n_units
    arithmetic = np.zeros((n_examples, n_classes))
    mean_logits = np.zeros((n_examples, n_classes))
    mean_log_probs = np.zeros((n_examples, n_classes))

    widest = max(sizes)
    chunk = max(
        1, min(n_masks, ENUMERATION_CHUNK_ELEMENTS // max(1, n_examples * widest))
    )
    for start in range(0, n_masks, chunk):
        if cancelled is not None and cancelled():
            raise EvaluationCancelled
        codes = np.arange(start, min(start + chunk, n_masks))  # (m,)
        bits = (codes[:, None] >> np.arange(n_units)) & 1  # (m, n_units): 1 = kept
        weights = _mask_probabilities(bits, chosen, sizes, network.keep_probs)  # (m,)
        scales = _stacked_scales(bits, chosen, sizes, network, n_examples)
        stacked = np.tile(x64, (len(codes), 1))  # (m * n_examples, n_0)
        logits = forward(params, stacked, network.activation, scales).logits
        logits = logits.reshape(len(codes), n_examples, n_classes)
        log_probs = logits - _logsumexp(logits)
        arithmetic += np.einsum("m,mnc->nc", weights, np.exp(log_probs))
        mean_logits += np.einsum("m,mnc->nc", weights, logits)
        mean_log_probs += np.einsum("m,mnc->nc", weights, log_probs)
        if progress is not None:
            progress(min(start + chunk, n_masks) / n_masks)

    return ExactResult(
        layers=chosen,
        n_masks=n_masks,
        arithmetic=arithmetic,
        geometric=softmax(mean_logits),
        unnormalized_geometric=np.exp(mean_log_probs),
    )


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=-1, keepdims=True)
    result: np.ndarray = top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    return result


def _mask_probabilities(
    bits: np.ndarray, layers: list[int], sizes: list[int], keep_probs: list[float]
) -> np.ndarray:
    """Return P(mask) = prod of keep or (1 - keep) over the enumerated units: (m,)."""
    keep = np.concatenate(
        [np.full(sizes[layer], keep_probs[layer]) for layer in layers]
    )
    chosen = np.where(bits == 1, keep, 1.0 - keep)
    result: np.ndarray = np.prod(chosen, axis=1)
    return result


def _stacked_scales(
    bits: np.ndarray,
    layers: list[int],
    sizes: list[int],
    network: Network,
    n_examples: int,
) -> list[np.ndarray | None]:
    """Build per-row multipliers for m masks stacked over n examples each."""
    eval_scales = dropout.evaluation_scales(
        network.keep_probs, np.dtype(np.float64), network.scaling
    )
    scales: list[np.ndarray | None] = (
        list(eval_scales) if eval_scales else [None] * len(sizes[:-1])
    )
    offset = 0
    for layer in layers:
        width = sizes[layer]
        keep = network.keep_probs[layer]
        layer_bits = bits[:, offset : offset + width].astype(np.float64)  # (m, width)
        offset += width
        factor = 1.0 / keep if network.scaling == "inverted" else 1.0
        scales[layer] = np.repeat(
            layer_bits * factor, n_examples, axis=0
        )  # (m * n, width)
    return scales


def mc_spread(errors: np.ndarray) -> tuple[list[float], list[float]]:
    """Return the mean and standard deviation over repeats of an error table."""
    means = errors.mean(axis=0)
    spreads = (
        errors.std(axis=0, ddof=1) if errors.shape[0] > 1 else np.zeros(errors.shape[1])
    )
    return [float(v) for v in means], [float(v) for v in spreads]


@dataclass
class McStatistics:
    """Per-example statistics of k sampled sub-networks' predictions."""

    mean: np.ndarray  # arithmetic mean of probabilities: (n_examples, n_classes)
    geometric: np.ndarray  # softmax of the mean logits: (n_examples, n_classes)
    variance: np.ndarray  # across draws, averaged over classes: (n_examples,)
    entropy: np.ndarray  # of the mean prediction, in nats: (n_examples,)


def mc_statistics(
    network: Network, x: np.ndarray, k: int, rng: np.random.Generator
) -> McStatistics:
    """Average k sampled sub-networks, keeping running sums only."""
    n_classes = network.params.weights[-1].shape[1]
    total = np.zeros((len(x), n_classes))
    total_squares = np.zeros_like(total)
    logit_total = np.zeros_like(total)
    for _ in range(k):
        logits = sampled_logits(network, x, rng).astype(np.float64)
        probabilities = softmax(logits)
        total += probabilities
        total_squares += probabilities * probabilities
        logit_total += logits
    mean = total / k
    variance = np.maximum(total_squares / k - mean * mean, 0.0).mean(axis=1)
    entropy = -np.sum(mean * np.log(np.clip(mean, 1e-12, None)), axis=1)
    return McStatistics(mean, softmax(logit_total / k), variance, entropy)


def masked_logits(
    network: Network, x: np.ndarray, masks: Sequence[np.ndarray]
) -> np.ndarray:
    """Return the logits of the sub-network that per-step unit `masks` select."""
    scales = dropout.mask_scales(masks, network.keep_probs, x.dtype, network.scaling)
    return forward(network.params, x, network.activation, scales).logits
