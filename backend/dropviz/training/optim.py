"""Optimizers that update the shared weights in place."""

from __future__ import annotations

from dropviz.training.mlp import Params


class SGD:
    """Plain stochastic gradient descent: p <- p - learning_rate * grad."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate

    def update(self, params: Params, grads: Params) -> None:
        for param, grad in zip(
            params.weights + params.biases, grads.weights + grads.biases, strict=True
        ):
            param -= param.dtype.type(self.learning_rate) * grad
