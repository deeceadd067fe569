"""The trainer: turns a config into a network and advances it one step at a time.

The trainer does no I/O and has no reference to its consumers: each call to
`step` returns a StepRecord, and `evaluate` returns EpochMetrics. All
randomness comes from generators derived from `config.seed`; the global numpy
random state is never used, so equal configs give bit-identical runs.
"""

from __future__ import annotations

import numpy as np

from dropviz.training import dropout
from dropviz.training.config import TrainConfig
from dropviz.training.data import Dataset, load_dataset
from dropviz.training.mlp import (
    Params,
    backward,
    forward,
    init_params,
    softmax_cross_entropy,
)
from dropviz.training.optim import SGD
from dropviz.training.records import EpochMetrics, StepRecord

EVAL_BATCH_SIZE = 1024  # bounds evaluation memory: one (1024, n_units) block per layer


class Trainer:
    """Trains one multilayer perceptron with dropout on one data set."""

    def __init__(self, config: TrainConfig, dataset: Dataset | None = None) -> None:
        self.config = config
        self.dataset = dataset if dataset is not None else load_dataset(config)
        self.layer_sizes = [
            self.dataset.n_features,
            *config.hidden_sizes,
            self.dataset.n_classes,
        ]
        self.keep_probs = dropout.keep_probabilities(
            self.layer_sizes, config.input_drop_rate, config.hidden_drop_rate
        )

        # Independent streams, so adding draws to one never shifts another.
        init_seed, mask_seed, shuffle_seed = np.random.SeedSequence(config.seed).spawn(
            3
        )
        self.params = init_params(
            self.layer_sizes, config.activation, np.random.default_rng(init_seed)
        )
        self._mask_rng = np.random.default_rng(mask_seed)
        self._shuffle_rng = np.random.default_rng(shuffle_seed)
        self.optimizer = SGD(config.learning_rate)

        n_train = len(self.dataset.y_train)
        self.steps_per_epoch = -(-n_train // config.batch_size)  # ceiling division
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step_count = 0  # steps completed
        self._order = np.arange(n_train)

    @property
    def epoch(self) -> int:
        """The epoch of the next step (equals `config.epochs` once training is done)."""
        return self.step_count // self.steps_per_epoch

    @property
    def done(self) -> bool:
        return self.step_count >= self.total_steps

    def step(self) -> StepRecord:
        """Train one mini-batch through a freshly sampled sub-network."""
        if self.done:
            raise RuntimeError(
                f"training is complete after {self.total_steps} steps; "
                "create a new run to train further"
            )
        config = self.config
        epoch, batch_index = divmod(self.step_count, self.steps_per_epoch)
        if batch_index == 0:
            self._order = self._shuffle_rng.permutation(len(self.dataset.y_train))
        rows = self._order[
            batch_index * config.batch_size : (batch_index + 1) * config.batch_size
        ]
        x = self.dataset.x_train[rows]  # (batch, n_0)
        y = self.dataset.y_train[rows]  # (batch,)

        # sample the sub-network, then forward and backward through it
        masks = dropout.sample_masks(
            self._mask_rng,
            self.layer_sizes,
            self.keep_probs,
            config.mask_scope,
            len(rows),
        )
        scales = dropout.mask_scales(masks, self.keep_probs, np.dtype(np.float32))
        # A diverging run overflows to inf and NaN; the caller detects that from
        # the returned loss, so numpy's warnings would only add noise.
        with np.errstate(over="ignore", invalid="ignore"):
            cache = forward(self.params, x, config.activation, scales)
            loss, predicted, grad_logits = softmax_cross_entropy(cache.logits, y)
            grads = backward(self.params, cache, grad_logits, config.activation, scales)

            # update the shared weights and record exactly how far each one moved
            before = self.params.copy()
            self.optimizer.update(self.params, grads)
            weight_deltas = [
                a - b for a, b in zip(self.params.weights, before.weights, strict=True)
            ]
            bias_deltas = [
                a - b for a, b in zip(self.params.biases, before.biases, strict=True)
            ]

        self.step_count += 1
        return StepRecord(
            step=self.step_count - 1,
            epoch=epoch,
            batch_index=batch_index,
            loss=loss,
            batch_accuracy=float(np.mean(predicted == y)),
            masks=masks,
            weight_deltas=weight_deltas,
            bias_deltas=bias_deltas,
            epoch_end=batch_index == self.steps_per_epoch - 1,
        )

    def evaluate(self) -> EpochMetrics:
        """Measure loss and accuracy on both splits with the full network, no masks."""
        train_loss, train_accuracy = evaluate_split(
            self.params, self.dataset.x_train, self.dataset.y_train, self.config
        )
        test_loss, test_accuracy = evaluate_split(
            self.params, self.dataset.x_test, self.dataset.y_test, self.config
        )
        return EpochMetrics(
            epoch=max(self.epoch - 1, 0) if self.step_count else 0,
            step=self.step_count,
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
        )


def evaluate_split(
    params: Params, x: np.ndarray, y: np.ndarray, config: TrainConfig
) -> tuple[float, float]:
    """Return mean cross-entropy and accuracy of the unmasked network on (x, y)."""
    total_loss = 0.0
    correct = 0
    for start in range(0, len(y), EVAL_BATCH_SIZE):
        stop = start + EVAL_BATCH_SIZE
        with np.errstate(over="ignore", invalid="ignore"):
            logits = forward(params, x[start:stop], config.activation).logits
            loss, predicted, _ = softmax_cross_entropy(logits, y[start:stop])
        total_loss += loss * len(y[start:stop])
        correct += int(np.sum(predicted == y[start:stop]))
    return total_loss / len(y), correct / len(y)
