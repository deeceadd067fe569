"""Plain records the trainer emits; the stream, the API and storage consume them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepRecord:
    """One step: the sub-network it trained and how the shared weights moved.

    The arrays are fresh for every step and never written to afterwards, so a
    consumer may keep references to them instead of copying.
    """

    step: int  # 0-based, global within the run
    epoch: int  # 0-based
    batch_index: int  # 0-based position of the mini-batch within its epoch
    loss: float  # mean cross-entropy of the mini-batch, with dropout
    batch_accuracy: float  # with dropout
    masks: list[np.ndarray]  # bool, per masked unit layer: (n_l,) or (batch, n_l)
    weight_deltas: list[np.ndarray]  # W_after - W_before: (n_l, n_{l+1}) float32
    bias_deltas: list[np.ndarray]  # b_after - b_before: (n_{l+1},) float32
    epoch_end: bool  # True when this step was the last mini-batch of its epoch

    @property
    def batch_rows(self) -> int:
        """Mask rows per layer: 1 for per-step masks, else the mini-batch size."""
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
