"""The trainer: turns a config into a network and advances it one step at a time.

The trainer does no I/O and has no reference to its consumers: each call to
`step` returns a StepRecord, and `evaluate` returns EpochMetrics. All
randomness comes from generators derived from `config.seed`; the global numpy
random state is never used, so equal configs give bit-identical runs.
"""

from __future__ import annotations

import numpy as np

from dropviz.training import dropout
from dropviz.training.compact import (
    LAYOUT_MIN_ENTRIES,
    compact_forward_backward,
    compact_layout,
)
from dropviz.training.config import TrainConfig
from dropviz.training.data import Dataset, load_dataset
from dropviz.training.mlp import (
    Params,
    backward,
    forward,
    init_params,
    resolve_init,
    softmax_cross_entropy,
)
from dropviz.training.optim import Optimizer, learning_rate_at
from dropviz.training.records import BlockDelta, EpochMetrics, StepRecord
from dropviz.training.state import TrainerState

EVAL_BATCH_SIZE = 1024  # bounds evaluation memory: one (1024, n_units) block per layer

# loss, predicted classes, weight deltas, bias deltas, unit masks, weight masks
_StepOutcome = tuple[
    float,
    np.ndarray,
    list[np.ndarray | BlockDelta],
    list[np.ndarray],
    list[np.ndarray],
    list[np.ndarray] | None,
]


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
        self.keep_probs = dropout.keep_probabilities(config.layer_drop_rates)

        # Independent streams, so adding draws to one never shifts another.
        init_seed, mask_seed, shuffle_seed = np.random.SeedSequence(config.seed).spawn(
            3
        )
        self.params = init_params(
            self.layer_sizes,
            resolve_init(config.init, config.activation),
            np.random.default_rng(init_seed),
        )
        if config.uses_compact_step:
            # Large matrices get the layout whose blocks gather and scatter
            # fastest, with the same values.
            self.params.weights = [
                compact_layout(w) if w.size >= LAYOUT_MIN_ENTRIES else w
                for w in self.params.weights
            ]
        self._mask_rng = np.random.default_rng(mask_seed)
        self._shuffle_rng = np.random.default_rng(shuffle_seed)
        self.optimizer = Optimizer(config, self.params)

        n_train = len(self.dataset.y_train)
        self.steps_per_epoch = -(-n_train // config.batch_size)  # ceiling division
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step_count = 0  # steps completed
        self._order = np.arange(n_train)

    def state_dict(self) -> TrainerState:
        """Return a copy of everything the next steps depend on.

        A trainer built by `from_state` from it takes the same steps, with the
        same masks, order and weights, bit for bit.
        """
        velocity, second = self.optimizer.buffers
        return TrainerState(
            step_count=self.step_count,
            weights=[w.copy() for w in self.params.weights],
            biases=[b.copy() for b in self.params.biases],
            optimizer_step_count=self.optimizer.step_count,
            velocity=[v.copy() for v in velocity],
            second_moment=[s.copy() for s in second],
            mask_rng_state=dict(self._mask_rng.bit_generator.state),
            shuffle_rng_state=dict(self._shuffle_rng.bit_generator.state),
            order=self._order.copy(),
        )

    @classmethod
    def from_state(
        cls, config: TrainConfig, state: TrainerState, dataset: Dataset | None = None
    ) -> Trainer:
        """Build a trainer for `config` and move it to `state`.

        `config` and the data set must be the ones the state was saved with.
        Raises ValueError when the state's shapes do not fit them.
        """
        trainer = cls(config, dataset)
        trainer.load_state(state)
        return trainer

    def load_state(self, state: TrainerState) -> None:
        """Replace this trainer's parameters, buffers, generators and position."""
        expected = [w.shape for w in self.params.weights]
        if [w.shape for w in state.weights] != expected or [
            b.shape for b in state.biases
        ] != [b.shape for b in self.params.biases]:
            raise ValueError(
                f"the state's weight shapes {[w.shape for w in state.weights]} do "
                f"not match this network's {expected}"
            )
        if state.order.shape != self._order.shape:
            raise ValueError(
                f"the state's example order has {state.order.shape[0]} entries; "
                f"the training split has {self._order.shape[0]} examples"
            )
        if not 0 <= state.step_count <= self.total_steps:
            raise ValueError(
                f"the state is at step {state.step_count}, outside this run's "
                f"0..{self.total_steps} steps"
            )

        self.optimizer.load_buffers(
            state.optimizer_step_count, state.velocity, state.second_moment
        )
        for target, source in zip(
            self.params.weights + self.params.biases,
            state.weights + state.biases,
            strict=True,
        ):
            target[...] = source
        self._mask_rng.bit_generator.state = state.mask_rng_state
        self._shuffle_rng.bit_generator.state = state.shuffle_rng_state
        self._order = state.order.copy()
        self.step_count = state.step_count

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
        learning_rate = learning_rate_at(
            config, self.step_count, self.total_steps, self.steps_per_epoch
        )

        # A diverging run overflows to inf and NaN; the caller detects that from
        # the returned loss, so numpy's warnings would only add noise.
        with np.errstate(over="ignore", invalid="ignore"):
            if config.variant == "dropconnect":
                sampled = dropout.sample_weight_masks(
                    self._mask_rng, self.layer_sizes, self.keep_probs
                )
                outcome = self._dense_step(x, y, [], sampled, learning_rate)
            else:
                masks = dropout.sample_masks(
                    self._mask_rng,
                    self.layer_sizes,
                    self.keep_probs,
                    config.mask_scope,
                    len(rows),
                )
                if config.uses_compact_step:
                    outcome = self._compact_step(x, y, masks, learning_rate)
                else:
                    outcome = self._dense_step(x, y, masks, None, learning_rate)
        loss, predicted, weight_deltas, bias_deltas, unit_masks, weight_masks = outcome

        self.step_count += 1
        return StepRecord(
            step=self.step_count - 1,
            epoch=epoch,
            batch_index=batch_index,
            loss=loss,
            batch_accuracy=np.count_nonzero(predicted == y) / len(y),
            learning_rate=learning_rate,
            masks=unit_masks,
            weight_masks=weight_masks,
            raw_weight_deltas=weight_deltas,
            bias_deltas=bias_deltas,
            epoch_end=batch_index == self.steps_per_epoch - 1,
        )

    def _dense_step(
        self,
        x: np.ndarray,
        y: np.ndarray,
        masks: list[np.ndarray],
        weight_masks: list[np.ndarray] | None,
        learning_rate: float,
    ) -> _StepOutcome:
        """Train with full-size matrices, dropped units or weights multiplied by 0."""
        config = self.config
        dtype = np.dtype(np.float32)
        scales = None
        weight_scales = None
        if weight_masks is not None:
            weight_scales = dropout.mask_scales(
                weight_masks, self.keep_probs, dtype, config.scaling
            )
        else:
            scales = dropout.mask_scales(masks, self.keep_probs, dtype, config.scaling)
        cache = forward(self.params, x, config.activation, scales, weight_scales)
        loss, predicted, grad_logits = softmax_cross_entropy(cache.logits, y)
        grads = backward(cache, grad_logits, config.activation, scales, weight_scales)

        weight_deltas, bias_deltas = self._update_dense(grads, learning_rate)
        return loss, predicted, weight_deltas, bias_deltas, masks, weight_masks

    def _compact_step(
        self,
        x: np.ndarray,
        y: np.ndarray,
        masks: list[np.ndarray],
        learning_rate: float,
    ) -> _StepOutcome:
        """Train on the kept units' sub-matrices only (one mask per step)."""
        config = self.config
        plain_sgd = self.optimizer.is_plain_sgd and config.max_norm is None
        result = compact_forward_backward(
            self.params,
            x,
            y,
            masks,
            self.keep_probs,
            config.activation,
            config.scaling,
            grad_scale=-learning_rate if plain_sgd else 1.0,
        )
        if not plain_sgd:
            # Stateful optimizers and constraints touch every weight: go dense
            # for the update, keeping the cheaper products of the pass.
            dense_grads = result.dense_grads(self.params)
            dense_deltas, bias_deltas = self._update_dense(dense_grads, learning_rate)
            return result.loss, result.predicted, dense_deltas, bias_deltas, masks, None

        # Plain SGD moves only the block: add the step, -learning_rate times
        # the gradient, to the gathered copy and write it back.
        self.optimizer.step_count += 1
        block_deltas: list[np.ndarray | BlockDelta] = []
        bias_deltas = []
        for layer, block in enumerate(result.blocks):
            weight = self.params.weights[layer]
            sub_before = result.sub_weights[layer]
            sub_after = result.grad_weights[layer]  # reused in place: no longer needed
            sub_after += sub_before
            block.scatter(weight, sub_after, result.kept_rows[layer])
            block_deltas.append(BlockDelta(block, sub_before, sub_after, weight.shape))

            bias = self.params.biases[layer]
            kept_before = bias[block.cols]
            kept_after = kept_before + result.grad_biases[layer]
            bias[block.cols] = kept_after
            bias_delta = np.zeros_like(bias)
            bias_delta[block.cols] = kept_after - kept_before
            bias_deltas.append(bias_delta)
        return result.loss, result.predicted, block_deltas, bias_deltas, masks, None

    def _update_dense(
        self, grads: Params, learning_rate: float
    ) -> tuple[list[np.ndarray | BlockDelta], list[np.ndarray]]:
        """Apply the optimizer to all parameters and return each layer's delta."""
        before = self.params.copy()
        self.optimizer.update(self.params, grads, learning_rate)
        weight_deltas: list[np.ndarray | BlockDelta] = [
            after - prior
            for after, prior in zip(self.params.weights, before.weights, strict=True)
        ]
        bias_deltas = [
            after - prior
            for after, prior in zip(self.params.biases, before.biases, strict=True)
        ]
        return weight_deltas, bias_deltas

    def evaluate(self) -> EpochMetrics:
        """Measure loss and accuracy on both splits with the full network, no masks."""
        train_loss, train_accuracy = self.evaluate_split(
            self.dataset.x_train, self.dataset.y_train
        )
        test_loss, test_accuracy = self.evaluate_split(
            self.dataset.x_test, self.dataset.y_test
        )
        return EpochMetrics(
            epoch=max(self.epoch - 1, 0) if self.step_count else 0,
            step=self.step_count,
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
        )

    def evaluate_split(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Return mean cross-entropy and accuracy of the unmasked network on (x, y)."""
        predicted, total_loss = self._predict(x, y)
        return total_loss / len(y), float(np.mean(predicted == y))

    def confusion_matrix(self, split: str = "test") -> np.ndarray:
        """Count (true, predicted) class pairs without masks: (n_classes, n_classes)."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        x = self.dataset.x_train if split == "train" else self.dataset.x_test
        y = self.dataset.y_train if split == "train" else self.dataset.y_test
        predicted, _ = self._predict(x, y)
        n_classes = self.dataset.n_classes
        counts = np.bincount(y * n_classes + predicted, minlength=n_classes * n_classes)
        return counts.reshape(n_classes, n_classes)

    def _predict(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        # Under classic DropConnect every weight of layer l has the keep
        # probability of unit layer l, so scaling the layer's input is the same
        # as scaling its weights.
        scales = dropout.evaluation_scales(
            self.keep_probs, np.dtype(np.float32), self.config.scaling
        )
        predicted = np.empty(len(y), dtype=np.int64)
        total_loss = 0.0
        for start in range(0, len(y), EVAL_BATCH_SIZE):
            stop = start + EVAL_BATCH_SIZE
            with np.errstate(over="ignore", invalid="ignore"):
                logits = forward(
                    self.params, x[start:stop], self.config.activation, scales
                ).logits
                loss, batch_predicted, _ = softmax_cross_entropy(logits, y[start:stop])
            total_loss += loss * len(y[start:stop])
            predicted[start:stop] = batch_predicted
        return predicted, total_loss
