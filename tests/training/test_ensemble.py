"""Inference rules against the identities and limits that theory gives."""

from __future__ import annotations

import numpy as np
import pytest

from dropviz.training import mlp
from dropviz.training.config import TrainConfig
from dropviz.training.ensemble import (
    Network,
    exact_ensemble,
    mc_curve,
    sampled_logits,
    softmax,
    weight_scaling_logits,
)
from dropviz.training.trainer import Trainer

SIZES = [4, 6, 8, 3]  # input, hidden 1, hidden 2 (8 droppable units), output


def _network(
    keep_probs: list[float], scaling: str, activation: str = "tanh"
) -> Network:
    rng = np.random.default_rng(3)
    params = mlp.init_params(SIZES, "glorot", rng).astype(np.float64)
    for weight in params.weights:
        weight *= 2.0  # larger weights make the rules differ measurably
    for bias in params.biases:
        bias[:] = rng.normal(0.0, 0.3, bias.shape)
    return Network(params, activation, keep_probs, scaling, "dropout")


def _inputs() -> np.ndarray:
    return np.random.default_rng(9).standard_normal((25, SIZES[0]))


@pytest.mark.parametrize("scaling", ["inverted", "classic"])
@pytest.mark.parametrize("keep", [0.5, 0.8, 0.3])
def test_geometric_mean_equals_weight_scaling_for_last_layer(
    scaling: str, keep: float
) -> None:
    # Only the last hidden layer has dropout, and it feeds the softmax linearly,
    # so E[logits] is the weight-scaled logits and their softmax is the
    # normalized weighted geometric mean.
    network = _network([1.0, 1.0, keep], scaling)
    x = _inputs()
    exact = exact_ensemble(network, x)
    reference = softmax(weight_scaling_logits(network, x))
    assert exact.n_masks == 2**8
    assert np.max(np.abs(exact.geometric - reference)) < 1e-9
    # Negative controls: neither of these is the deterministic network.
    assert np.max(np.abs(exact.arithmetic - reference)) > 1e-3
    assert np.max(np.abs(exact.unnormalized_geometric - reference)) > 1e-3


@pytest.mark.parametrize("scaling", ["inverted", "classic"])
def test_identity_fails_below_a_nonlinearity(scaling: str) -> None:
    network = _network([0.5, 1.0, 1.0], scaling)  # input dropout, then tanh layers
    x = _inputs()
    exact = exact_ensemble(network, x)
    reference = softmax(weight_scaling_logits(network, x))
    assert np.max(np.abs(exact.geometric - reference)) > 1e-3


def test_identity_fails_with_two_dropout_layers() -> None:
    network = _network([1.0, 0.5, 0.5], "inverted")  # 6 + 8 = 14 units enumerated
    x = _inputs()
    exact = exact_ensemble(network, x)
    assert exact.n_masks == 2**14
    reference = softmax(weight_scaling_logits(network, x))
    assert np.max(np.abs(exact.geometric - reference)) > 1e-3


def test_exact_enumeration_probabilities_sum_to_one() -> None:
    network = _network([1.0, 0.7, 0.4], "inverted")
    exact = exact_ensemble(network, _inputs())
    assert np.allclose(exact.arithmetic.sum(axis=1), 1.0, atol=1e-12)


def test_exact_enumeration_rejects_too_many_units() -> None:
    network = _network([0.5, 0.5, 0.5], "inverted")  # 4 + 6 + 8 = 18 units
    with pytest.raises(ValueError, match="at most 16"):
        exact_ensemble(network, _inputs())
    # Enumerating a subset is allowed; the other layers use weight scaling.
    assert exact_ensemble(network, _inputs(), layers=[2]).n_masks == 2**8


@pytest.mark.parametrize("k", [1, 7, 40])
def test_geometric_mc_is_softmax_of_mean_logits(k: int) -> None:
    network = _network([0.8, 0.5, 0.5], "inverted")
    x = _inputs()
    labels = np.zeros(len(x), dtype=np.int64)
    curve = mc_curve(network, x, labels, [k], repeats=1, rng=np.random.default_rng(5))
    # Independently: draw the same k sub-networks from the same seed.
    rng = np.random.default_rng(5)
    logits = [sampled_logits(network, x, rng).astype(np.float64) for _ in range(k)]
    expected = softmax(np.mean(logits, axis=0))
    assert np.max(np.abs(curve.probabilities["geometric"] - expected)) < 1e-12


@pytest.mark.parametrize("k", [10, 100])
def test_arithmetic_mc_converges_to_exact_mean(k: int) -> None:
    network = _network([1.0, 0.5, 0.5], "inverted")
    x = _inputs()
    labels = np.zeros(len(x), dtype=np.int64)
    exact = exact_ensemble(network, x)
    curve = mc_curve(network, x, labels, [k], repeats=1, rng=np.random.default_rng(8))
    # A class probability lies in [0, 1], so its standard deviation is at most
    # 0.5 and the MC mean's RMS error at most 0.5 / sqrt(k); allow 3 times that.
    rms = np.sqrt(np.mean((curve.probabilities["arithmetic"] - exact.arithmetic) ** 2))
    assert rms <= 3 * 0.5 / np.sqrt(k)


def test_mc_curve_shapes_and_agreement_bounds() -> None:
    network = _network([0.8, 0.5, 0.5], "classic")
    x = _inputs()
    labels = np.random.default_rng(1).integers(0, 3, len(x))
    curve = mc_curve(
        network, x, labels, [1, 5, 20], repeats=3, rng=np.random.default_rng(2)
    )
    assert curve.ks == [1, 5, 20]
    assert curve.arithmetic_errors.shape == (3, 3)
    assert np.all((curve.geometric_agreements >= 0) & (curve.geometric_agreements <= 1))


def test_dropconnect_mc_uses_weight_masks() -> None:
    rng = np.random.default_rng(3)
    params = mlp.init_params(SIZES, "glorot", rng)
    network = Network(params, "relu", [0.5, 0.5, 0.5], "inverted", "dropconnect")
    x = _inputs().astype(np.float32)
    first = sampled_logits(network, x, np.random.default_rng(0))
    second = sampled_logits(network, x, np.random.default_rng(1))
    assert first.shape == (25, 3)
    assert not np.allclose(first, second)
    with pytest.raises(ValueError, match="DropConnect"):
        exact_ensemble(network, x)


def test_digits_mc_matches_weight_scaling_at_k50() -> None:
    # 64-256-256-10, ReLU, hidden drop 0.5, momentum 0.9, 60 epochs. Over seeds
    # 0 to 2, MC with k = 50 stayed within 0.5 points of weight scaling's test
    # error and k = 1 was 2.6 to 3.4 points worse.
    config = TrainConfig(
        hidden_sizes=(256, 256),
        input_drop_rate=0.0,
        hidden_drop_rate=0.5,
        optimizer="momentum",
        momentum=0.9,
        learning_rate=0.003,
        lr_schedule="cosine",
        batch_size=8,
        epochs=60,
    )
    trainer = Trainer(config)
    while not trainer.done:
        trainer.step()
    network = Network(trainer.params, "relu", trainer.keep_probs, "inverted", "dropout")
    x, labels = trainer.dataset.x_test, trainer.dataset.y_test
    ws_error = np.mean(weight_scaling_logits(network, x).argmax(axis=1) != labels)
    curve = mc_curve(
        network, x, labels, [1, 50], repeats=5, rng=np.random.default_rng(0)
    )

    for errors, agreements in [
        (curve.arithmetic_errors, curve.arithmetic_agreements),
        (curve.geometric_errors, curve.geometric_agreements),
    ]:
        assert abs(errors[:, 1].mean() - ws_error) <= 0.010
        assert agreements[:, 1].mean() >= 0.97
        assert errors[:, 0].mean() >= ws_error + 0.010
