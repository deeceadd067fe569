"""Optimizers, weight decay, the max-norm constraint and learning-rate schedules.

Every optimizer updates the shared weights in place. Under momentum, Adam or
weight decay a weight outside the step's sub-network moves too, because its
update depends on more than this step's gradient, which is zero there.
"""

from __future__ import annotations

import math

import numpy as np

from dropviz.training.config import TrainConfig
from dropviz.training.mlp import Params


class Optimizer:
    """SGD, SGD with momentum or Nesterov momentum, or Adam, with L2 weight decay.

    The update rules, for a parameter a with gradient g (g includes the weight
    decay term `weight_decay * a` for weights):
      sgd:       a <- a - lr * g
      momentum:  v <- mu * v - lr * g;            a <- a + v
      nesterov:  v <- mu * v - lr * g;            a <- a + mu * v - lr * g
      adam:      m <- b1 * m + (1 - b1) * g;      s <- b2 * s + (1 - b2) * g^2
                 a <- a - lr * (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps)
    """

    def __init__(self, config: TrainConfig, params: Params) -> None:
        self.name = config.optimizer
        self.momentum = config.momentum
        self.beta1 = config.adam_beta1
        self.beta2 = config.adam_beta2
        self.epsilon = config.adam_epsilon
        self.weight_decay = config.weight_decay
        self.max_norm = config.max_norm
        self.step_count = 0
        parameters = params.weights + params.biases
        self._velocity = (
            [np.zeros_like(p) for p in parameters] if self.name != "sgd" else []
        )
        self._second = (
            [np.zeros_like(p) for p in parameters] if self.name == "adam" else []
        )

    @property
    def buffers(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Return the velocity (or first moment) and second-moment arrays, live."""
        return self._velocity, self._second

    def load_buffers(
        self, step_count: int, velocity: list[np.ndarray], second: list[np.ndarray]
    ) -> None:
        """Replace the update count and buffers, for a trainer rebuilt from a state.

        Raises ValueError when the counts or shapes differ from this optimizer's.
        """
        for name, current, loaded in (
            ("velocity", self._velocity, velocity),
            ("second moment", self._second, second),
        ):
            if [a.shape for a in current] != [a.shape for a in loaded]:
                raise ValueError(
                    f"the {self.name} optimizer's {name} buffers have shapes "
                    f"{[a.shape for a in current]}, the state has "
                    f"{[a.shape for a in loaded]}"
                )
        self.step_count = step_count
        self._velocity = [
            a.astype(b.dtype) for a, b in zip(velocity, self._velocity, strict=True)
        ]
        self._second = [
            a.astype(b.dtype) for a, b in zip(second, self._second, strict=True)
        ]

    @property
    def is_plain_sgd(self) -> bool:
        """Whether an update moves exactly the weights whose gradient is non-zero."""
        return self.name == "sgd" and self.weight_decay == 0.0

    def update(self, params: Params, grads: Params, learning_rate: float) -> None:
        """Apply one step to every parameter, then the max-norm constraint."""
        self.step_count += 1
        n_weights = len(params.weights)
        parameters = params.weights + params.biases
        gradients = grads.weights + grads.biases
        for index, (param, grad) in enumerate(zip(parameters, gradients, strict=True)):
            if self.weight_decay and index < n_weights:
                grad = grad + param.dtype.type(self.weight_decay) * param
            self._apply(index, param, grad, learning_rate)
        if self.max_norm is not None:
            for weight in params.weights:
                apply_max_norm(weight, self.max_norm)

    def _apply(
        self, index: int, param: np.ndarray, grad: np.ndarray, lr: float
    ) -> None:
        dtype = param.dtype.type
        if self.name == "sgd":
            param -= dtype(lr) * grad
            return
        velocity = self._velocity[index]
        if self.name in ("momentum", "nesterov"):
            velocity *= dtype(self.momentum)
            velocity -= dtype(lr) * grad
            if self.name == "momentum":
                param += velocity
            else:
                param += dtype(self.momentum) * velocity - dtype(lr) * grad
            return
        second = self._second[index]
        velocity *= dtype(self.beta1)
        velocity += dtype(1 - self.beta1) * grad
        second *= dtype(self.beta2)
        second += dtype(1 - self.beta2) * grad * grad
        first_unbiased = velocity / dtype(1 - self.beta1**self.step_count)
        second_unbiased = second / dtype(1 - self.beta2**self.step_count)
        param -= (
            dtype(lr)
            * first_unbiased
            / (np.sqrt(second_unbiased) + dtype(self.epsilon))
        )


def apply_max_norm(weight: np.ndarray, max_norm: float) -> None:
    """Rescale in place each column, a unit's incoming weights, to norm <= max_norm."""
    norms = np.sqrt(np.einsum("ij,ij->j", weight, weight))  # (n_out,)
    over = norms > max_norm
    if np.any(over):
        weight[:, over] *= (max_norm / norms[over]).astype(weight.dtype)


def learning_rate_at(
    config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int
) -> float:
    """Return the learning rate of 0-based `step` under the configured schedule."""
    base = config.learning_rate
    if config.lr_schedule == "step":
        decays = (step // steps_per_epoch) // config.lr_step_epochs
        return float(base * config.lr_step_factor**decays)
    if config.lr_schedule == "cosine":
        return float(base * 0.5 * (1.0 + math.cos(math.pi * step / total_steps)))
    return float(base)
