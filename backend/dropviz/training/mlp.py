"""A multilayer perceptron: parameters, forward pass with dropout, backward pass.

W[l] has shape (n_l, n_{l+1}): row = source unit, column = destination unit.
The functions work in the dtype of the parameters, float32 for training and
float64 for gradient checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dropviz.training.config import Activation


@dataclass
class Params:
    """The shared weights: one weight matrix and one bias vector per weight layer."""

    weights: list[np.ndarray]  # W[l]: (n_l, n_{l+1})
    biases: list[np.ndarray]  # b[l]: (n_{l+1},)

    def copy(self) -> Params:
        return Params([w.copy() for w in self.weights], [b.copy() for b in self.biases])

    def astype(self, dtype: type[np.floating]) -> Params:
        return Params(
            [w.astype(dtype) for w in self.weights],
            [b.astype(dtype) for b in self.biases],
        )


@dataclass
class ForwardCache:
    """Arrays of the forward pass that the backward pass reuses."""

    layer_inputs: list[np.ndarray]  # input of W[l] after dropout: (batch, n_l)
    hidden_outputs: list[np.ndarray]  # activation of hidden layer l+1: (batch, n_{l+1})
    weights: list[np.ndarray]  # W[l] as used, after any DropConnect multiplier
    logits: np.ndarray  # (batch, n_classes)


def init_params(
    layer_sizes: Sequence[int], init: str, rng: np.random.Generator
) -> Params:
    """Draw initial weights from a normal distribution, with zero biases.

    "he" uses variance 2 / n_in, which keeps ReLU activations at a steady scale;
    "glorot" uses 2 / (n_in + n_out), meant for tanh and sigmoid.
    """
    weights, biases = [], []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
        if init == "he":
            std = np.sqrt(2.0 / n_in)
        elif init == "glorot":
            std = np.sqrt(2.0 / (n_in + n_out))
        else:
            raise ValueError(f"init must be 'he' or 'glorot', got {init!r}")
        weights.append((rng.standard_normal((n_in, n_out)) * std).astype(np.float32))
        biases.append(np.zeros(n_out, dtype=np.float32))
    return Params(weights, biases)


def resolve_init(init: str, activation: Activation) -> str:
    """Map "auto" to He for relu and Glorot for tanh and sigmoid."""
    if init != "auto":
        return init
    return "he" if activation == "relu" else "glorot"


def activate(z: np.ndarray, activation: Activation) -> np.ndarray:
    output: np.ndarray
    if activation == "relu":
        output = np.maximum(z, 0)
    elif activation == "tanh":
        output = np.tanh(z)
    else:
        # A sigmoid written with exp(-|z|) never overflows.
        e = np.exp(-np.abs(z))
        output = np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)
    return output


def activation_derivative(output: np.ndarray, activation: Activation) -> np.ndarray:
    """Return d(activation)/dz, written in terms of the activation's output."""
    derivative: np.ndarray
    if activation == "relu":
        derivative = (output > 0).astype(output.dtype)
    elif activation == "tanh":
        derivative = 1 - output * output
    else:
        derivative = output * (1 - output)
    return derivative


def forward(
    params: Params,
    x: np.ndarray,
    activation: Activation,
    scales: Sequence[np.ndarray | None] | None = None,
    weight_scales: Sequence[np.ndarray | None] | None = None,
) -> ForwardCache:
    """Run the network on a batch `x` of shape (batch, n_0).

    `scales` has one multiplier per masked unit layer, applied to that layer's
    output (see `dropout.mask_scales`). `weight_scales` has one DropConnect
    multiplier per weight layer, applied to W[l]. None, for a layer or for the
    whole argument, means no multiplier.
    """
    n_layers = len(params.weights)
    layer_inputs: list[np.ndarray] = []
    hidden_outputs: list[np.ndarray] = []
    used_weights: list[np.ndarray] = []
    h = x
    for layer in range(n_layers):
        scale = scales[layer] if scales is not None else None
        if scale is not None:
            h = h * scale
        weight = params.weights[layer]
        weight_scale = weight_scales[layer] if weight_scales is not None else None
        if weight_scale is not None:
            weight = weight * weight_scale
        layer_inputs.append(h)
        used_weights.append(weight)
        z = h @ weight + params.biases[layer]  # (batch, n_{l+1})
        if layer == n_layers - 1:
            return ForwardCache(layer_inputs, hidden_outputs, used_weights, z)
        h = activate(z, activation)
        hidden_outputs.append(h)
    raise ValueError("the network has no weight layers")


def softmax_cross_entropy(
    logits: np.ndarray, labels: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Return the mean loss, the per-example predicted class and dLoss/dlogits.

    The work runs on the transposed logits, one row per class, because numpy
    reduces a (256, 10) array along its short rows several times slower than
    it combines 10 rows of 256 elementwise (numpy 2.4). dLoss/dlogits comes
    back as a column-major (batch, n_classes) view of that layout.
    """
    scores = np.ascontiguousarray(logits.T)  # (n_classes, batch)
    log_probs = scores - scores.max(axis=0)
    log_probs -= np.log(np.exp(log_probs).sum(axis=0))
    batch = scores.shape[1]
    examples = np.arange(batch)
    loss = float(-log_probs[labels, examples].mean())
    grad = np.exp(log_probs)  # (n_classes, batch)
    grad[labels, examples] -= 1
    grad /= batch
    return loss, logits.argmax(axis=1), grad.T


def backward(
    cache: ForwardCache,
    grad_logits: np.ndarray,
    activation: Activation,
    scales: Sequence[np.ndarray | None] | None = None,
    weight_scales: Sequence[np.ndarray | None] | None = None,
) -> Params:
    """Back-propagate dLoss/dlogits and return the gradient of every parameter.

    Pass the same `scales` and `weight_scales` as to `forward`. A dropped unit
    or weight has multiplier 0, so its gradient entries come out exactly zero
    rather than merely small.
    """
    n_layers = len(cache.weights)
    grad_weights: list[np.ndarray] = [np.empty(0)] * n_layers
    grad_biases: list[np.ndarray] = [np.empty(0)] * n_layers
    dz = grad_logits  # (batch, n_{l+1})
    for layer in range(n_layers - 1, -1, -1):
        grad_weight = cache.layer_inputs[layer].T @ dz
        weight_scale = weight_scales[layer] if weight_scales is not None else None
        if weight_scale is not None:
            grad_weight *= weight_scale
        grad_weights[layer] = grad_weight
        grad_biases[layer] = dz.sum(axis=0)
        if layer == 0:
            break
        dh = dz @ cache.weights[layer].T  # gradient at the input of W[l]
        scale = scales[layer] if scales is not None else None
        if scale is not None:
            dh = dh * scale
        dz = dh * activation_derivative(cache.hidden_outputs[layer - 1], activation)
    return Params(grad_weights, grad_biases)
