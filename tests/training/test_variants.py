"""DropConnect, scaling conventions, initializations and evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from dropviz.training import dropout, mlp
from dropviz.training.config import TrainConfig
from dropviz.training.trainer import Trainer

N_SAMPLES = 20_000
Z_LIMIT = 4.5  # standard errors; the draws are seeded, so the test is deterministic


@pytest.mark.parametrize("scaling", ["inverted", "classic"])
@pytest.mark.parametrize("variant", ["dropout", "dropconnect"])
@pytest.mark.parametrize("keep_prob", [0.8, 0.5])
def test_training_preactivation_mean_equals_evaluation(
    scaling: str, variant: str, keep_prob: float
) -> None:
    rng = np.random.default_rng(21)
    n_in, n_out = 12, 5
    x = rng.standard_normal(n_in)
    weight = rng.standard_normal((n_in, n_out))
    dtype = np.dtype(np.float64)

    samples = np.empty((N_SAMPLES, n_out))  # training-mode pre-activations
    for k in range(N_SAMPLES):
        if variant == "dropout":
            mask = rng.random(n_in) < keep_prob
            (scale,) = dropout.mask_scales([mask], [keep_prob], dtype, scaling)
            samples[k] = (x * scale) @ weight
        else:
            mask = rng.random((n_in, n_out)) < keep_prob
            (scale,) = dropout.mask_scales([mask], [keep_prob], dtype, scaling)
            samples[k] = x @ (weight * scale)

    (eval_scale,) = dropout.evaluation_scales([keep_prob], dtype, scaling) or [None]
    evaluation = (x * eval_scale if eval_scale is not None else x) @ weight
    standard_error = samples.std(axis=0) / np.sqrt(N_SAMPLES)
    assert np.all(np.abs(samples.mean(axis=0) - evaluation) < Z_LIMIT * standard_error)


def test_dropconnect_keep_frequency_per_weight() -> None:
    rng = np.random.default_rng(4)
    counts = np.zeros((6, 3))
    for _ in range(N_SAMPLES):
        (mask, _) = dropout.sample_weight_masks(rng, [6, 3, 2], [0.8, 0.5])
        counts += mask
    std = np.sqrt(0.8 * 0.2 / N_SAMPLES)
    assert np.max(np.abs(counts / N_SAMPLES - 0.8)) < Z_LIMIT * std


def test_dropconnect_step_moves_only_kept_weights() -> None:
    config = TrainConfig(hidden_sizes=(24,), variant="dropconnect")
    record = Trainer(config).step()
    assert record.masks == []
    assert record.weight_masks is not None
    for mask, delta in zip(record.weight_masks, record.weight_deltas, strict=True):
        assert mask.shape == delta.shape
        assert np.all(delta[~mask] == 0.0)
        assert np.any(delta[mask] != 0.0)


def test_dropconnect_rejects_per_example_masks() -> None:
    with pytest.raises(ValueError, match="per-step"):
        TrainConfig(variant="dropconnect", mask_scope="per-example")


@pytest.mark.parametrize(
    "init, expected_variance", [("he", 2 / 400), ("glorot", 2 / 700)]
)
def test_init_variance(init: str, expected_variance: float) -> None:
    params = mlp.init_params([400, 300], init, np.random.default_rng(0))
    weights = params.weights[0]
    # The sample variance of 120,000 normal draws has relative error about 0.4%.
    assert weights.var() == pytest.approx(expected_variance, rel=0.02)
    assert np.all(params.biases[0] == 0.0)


def test_init_auto_follows_activation() -> None:
    assert mlp.resolve_init("auto", "relu") == "he"
    assert mlp.resolve_init("auto", "tanh") == "glorot"
    assert mlp.resolve_init("glorot", "relu") == "glorot"


def test_classic_evaluation_scales_inputs_by_keep() -> None:
    config = TrainConfig(
        dataset="moons", n_samples=100, hidden_sizes=(8,), scaling="classic"
    )
    trainer = Trainer(config)
    for _ in range(20):
        trainer.step()
    x, y = trainer.dataset.x_test, trainer.dataset.y_test
    # Independent evaluation: multiply each weight layer by its source layer's keep.
    scaled = mlp.Params(
        [
            w * keep
            for w, keep in zip(trainer.params.weights, trainer.keep_probs, strict=True)
        ],
        trainer.params.biases,
    )
    logits = mlp.forward(scaled, x, "relu").logits
    expected_loss = mlp.softmax_cross_entropy(logits, y)[0]
    loss, accuracy = trainer.evaluate_split(x, y)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert accuracy == pytest.approx(float(np.mean(logits.argmax(axis=1) == y)))


def test_confusion_matrix_counts_test_split() -> None:
    trainer = Trainer(TrainConfig(hidden_sizes=(32,), epochs=1))
    while not trainer.done:
        trainer.step()
    matrix = trainer.confusion_matrix("test")
    assert matrix.shape == (10, 10)
    assert matrix.sum() == len(trainer.dataset.y_test)
    assert np.array_equal(
        matrix.sum(axis=1), np.bincount(trainer.dataset.y_test, minlength=10)
    )
    _, accuracy = trainer.evaluate_split(trainer.dataset.x_test, trainer.dataset.y_test)
    assert np.trace(matrix) / matrix.sum() == pytest.approx(accuracy)


def test_per_hidden_layer_drop_rates_reach_masks() -> None:
    config = TrainConfig(
        hidden_sizes=(400, 400), hidden_drop_rates=(0.1, 0.9), epochs=1
    )
    trainer = Trainer(config)
    kept = np.zeros(2)
    for _ in range(50):
        record = trainer.step()
        kept += [record.masks[1].mean(), record.masks[2].mean()]
    assert kept / 50 == pytest.approx([0.9, 0.1], abs=0.02)
