"""Plain records the trainer emits; the stream, the API and storage consume them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from dropviz.training.compact import Block


@dataclass(frozen=True)
class BlockDelta:
    """A weight layer's delta that is zero outside one block of rows and columns.

    It keeps the block's entries before and after the step and subtracts them
    only when a consumer reads the delta, so a step whose deltas no consumer
    reads skips that pass over the block.
    """

    block: Block
    before: np.ndarray  # the block's entries before the step: (k_l, k_{l+1})
    after: np.ndarray  # the same entries after the step
    shape: tuple[int, int]  # of the whole matrix: (n_l, n_{l+1})

    @property
    def values(self) -> np.ndarray:
        """W_after - W_before on the block: (k_l, k_{l+1})."""
        values: np.ndarray = self.after - self.before
        return values

    def dense(self) -> np.ndarray:
        return self.block.expand(self.values, self.shape)


@dataclass(frozen=True)
class StepRecord:
    """One step: the sub-network it trained and how the shared weights moved.

    The arrays are fresh for every step and never written to afterwards, so a
    consumer may keep references to them instead of copying. A compacted step
    stores its weight deltas as blocks and builds the full matrices only when
    a consumer first reads `weight_deltas`.
    """

    step: int  # 0-based, global within the run
    epoch: int  # 0-based
    batch_index: int  # 0-based position of the mini-batch within its epoch
    loss: float  # mean cross-entropy of the mini-batch, with dropout
    batch_accuracy: float  # with dropout
    learning_rate: float  # the rate this step used, after the schedule
    # Unit masks, bool per masked unit layer: (n_l,) per step or (batch, n_l)
    # per example. Empty for DropConnect, whose masks are in weight_masks.
    masks: list[np.ndarray]
    weight_masks: list[np.ndarray] | None  # DropConnect: (n_l, n_{l+1}) bool
    raw_weight_deltas: list[np.ndarray | BlockDelta]  # W_after - W_before
    bias_deltas: list[np.ndarray]  # b_after - b_before: (n_{l+1},) float32
    epoch_end: bool  # True when this step was the last mini-batch of its epoch

    @cached_property
    def weight_deltas(self) -> list[np.ndarray]:
        """W_after - W_before per weight layer: (n_l, n_{l+1}) float32."""
        return [
            delta.dense() if isinstance(delta, BlockDelta) else delta
            for delta in self.raw_weight_deltas
        ]

    @property
    def batch_rows(self) -> int:
        """Mask rows per layer: 1 for per-step masks, else the mini-batch size."""
        if not self.masks:
            return 1
        first = self.masks[0]
        return 1 if first.ndim == 1 else int(first.shape[0])


@dataclass(frozen=True)
class EpochMetrics:
    """Loss and accuracy on the full train and test splits, without dropout."""

    epoch: int
    step: int  # steps completed when the evaluation ran
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
