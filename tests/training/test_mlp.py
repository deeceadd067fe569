"""Forward and backward pass against finite differences and hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from dropviz.training import dropout, mlp

GRAD_TOLERANCE = 1e-6  # central differences with h = 1e-6 in float64 reach about 1e-9
LAYER_SIZES = [5, 7, 6, 3]


def _random_params(rng: np.random.Generator, activation: str) -> mlp.Params:
    init = mlp.resolve_init("auto", activation)
    params = mlp.init_params(LAYER_SIZES, init, rng).astype(np.float64)
    for bias in params.biases:
        # Non-zero biases keep ReLU pre-activations away from the kink at 0,
        # where a finite difference measures neither one-sided derivative.
        bias[:] = rng.normal(0.0, 0.5, bias.shape)
    return params


def _numeric_gradient(loss_of, array: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + h
        loss_plus = loss_of()
        array[index] = original - h
        loss_minus = loss_of()
        array[index] = original
        grad[index] = (loss_plus - loss_minus) / (2 * h)
    return grad


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("scaling", ["inverted", "classic"])
@pytest.mark.parametrize("masking", ["per-step", "per-example", "dropconnect"])
def test_backward_matches_finite_differences(
    activation: str, scaling: str, masking: str
) -> None:
    rng = np.random.default_rng(7)
    params = _random_params(rng, activation)
    x = rng.standard_normal((6, LAYER_SIZES[0]))
    y = np.array([0, 2, 1, 2, 0, 1])
    keep_probs = [0.8, 0.5, 0.5]
    dtype = np.dtype(np.float64)
    scales, weight_scales = None, None
    if masking == "dropconnect":
        weight_masks = dropout.sample_weight_masks(rng, LAYER_SIZES, keep_probs)
        weight_scales = dropout.mask_scales(weight_masks, keep_probs, dtype, scaling)
    else:
        masks = dropout.sample_masks(rng, LAYER_SIZES, keep_probs, masking, len(y))
        scales = dropout.mask_scales(masks, keep_probs, dtype, scaling)

    def loss_of() -> float:
        logits = mlp.forward(params, x, activation, scales, weight_scales).logits
        return mlp.softmax_cross_entropy(logits, y)[0]

    cache = mlp.forward(params, x, activation, scales, weight_scales)
    _, _, grad_logits = mlp.softmax_cross_entropy(cache.logits, y)
    grads = mlp.backward(cache, grad_logits, activation, scales, weight_scales)

    for layer in range(len(params.weights)):
        numeric_w = _numeric_gradient(loss_of, params.weights[layer])
        numeric_b = _numeric_gradient(loss_of, params.biases[layer])
        assert np.max(np.abs(grads.weights[layer] - numeric_w)) < GRAD_TOLERANCE, layer
        assert np.max(np.abs(grads.biases[layer] - numeric_b)) < GRAD_TOLERANCE, layer


def test_backward_dropped_units_get_exact_zero_gradient() -> None:
    rng = np.random.default_rng(3)
    params = _random_params(rng, "relu")
    x = rng.standard_normal((4, LAYER_SIZES[0]))
    y = np.array([0, 1, 2, 0])
    masks = [
        np.array([1, 0, 1, 1, 0], bool),
        np.array([0, 1, 1, 0, 1, 1, 1], bool),
        np.array([1, 1, 0, 1, 1, 1], bool),
    ]
    keep_probs = [0.8, 0.5, 0.5]
    scales = dropout.mask_scales(masks, keep_probs, np.dtype(np.float64))
    cache = mlp.forward(params, x, "relu", scales)
    grad_logits = mlp.softmax_cross_entropy(cache.logits, y)[2]
    grads = mlp.backward(cache, grad_logits, "relu", scales)

    for layer, mask in enumerate(masks):
        assert np.all(grads.weights[layer][~mask, :] == 0.0), (
            f"rows of dropped units in W[{layer}]"
        )
    for layer in range(1, len(masks)):
        assert np.all(grads.weights[layer - 1][:, ~masks[layer]] == 0.0), (
            f"columns into W[{layer - 1}]"
        )
        assert np.all(grads.biases[layer - 1][~masks[layer]] == 0.0), (
            f"biases of b[{layer - 1}]"
        )


def test_softmax_cross_entropy_matches_hand_computation() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = np.array([2, 0])
    # -log(e^3 / (e^1 + e^2 + e^3)) and -log(1/3), averaged
    expected = (-(3 - np.log(np.e + np.e**2 + np.e**3)) + np.log(3.0)) / 2
    loss, predicted, grad = mlp.softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(expected, abs=1e-12)
    assert predicted.tolist() == [2, 0]
    assert grad.sum(axis=1) == pytest.approx([0.0, 0.0], abs=1e-12)


def test_softmax_cross_entropy_large_logits_stay_finite() -> None:
    logits = np.array([[1000.0, -1000.0]], dtype=np.float32)
    loss, _, grad = mlp.softmax_cross_entropy(logits, np.array([0]))
    assert loss == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_activation_derivative_matches_finite_differences(activation: str) -> None:
    z = np.linspace(-4, 4, 41) + 0.013  # stays off the ReLU kink at 0
    h = 1e-6
    numeric = (mlp.activate(z + h, activation) - mlp.activate(z - h, activation)) / (
        2 * h
    )
    analytic = mlp.activation_derivative(mlp.activate(z, activation), activation)
    assert np.max(np.abs(numeric - analytic)) < 1e-8


def test_sigmoid_extreme_inputs_do_not_overflow() -> None:
    with np.errstate(over="raise"):
        out = mlp.activate(np.array([-1e4, 0.0, 1e4]), "sigmoid")
    assert out.tolist() == [0.0, 0.5, 1.0]
