"""The complete state of a trainer between two steps, as plain arrays.

A trainer rebuilt from a TrainerState continues bit-identically: the same
masks, the same mini-batch order and the same weights as the trainer that
produced it. The state holds no reference into the live trainer, so it can
be written out while training goes on. `to_arrays` and `from_arrays` map it
to a flat name -> array dict, the layout of a checkpoint `.npz` file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

STATE_FORMAT = 1  # bumped when the array names or their meaning change


@dataclass(frozen=True)
class TrainerState:
    """Parameters, optimizer buffers, generator states and the position in training."""

    step_count: int  # steps completed
    weights: list[np.ndarray]  # W[l]: (n_l, n_{l+1}) float32
    biases: list[np.ndarray]  # b[l]: (n_{l+1},) float32
    optimizer_step_count: int  # updates applied, the t of Adam's bias correction
    # Momentum velocity or Adam's first moment, then Adam's second moment: one
    # array per parameter, weights first, then biases; empty for plain SGD.
    velocity: list[np.ndarray]
    second_moment: list[np.ndarray]
    mask_rng_state: dict[str, Any]  # numpy `bit_generator.state` of the mask stream
    shuffle_rng_state: dict[str, Any]  # the same for the mini-batch order stream
    order: np.ndarray  # (n_train,) int64: this epoch's shuffled example order

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return the state as named arrays; generator states become JSON text."""
        arrays: dict[str, np.ndarray] = {
            "format": np.array(STATE_FORMAT, dtype=np.int64),
            "step_count": np.array(self.step_count, dtype=np.int64),
            "optimizer_step_count": np.array(self.optimizer_step_count, np.int64),
            # PCG64 states are 128-bit integers, which JSON keeps exactly.
            "mask_rng_state": np.array(json.dumps(self.mask_rng_state)),
            "shuffle_rng_state": np.array(json.dumps(self.shuffle_rng_state)),
            "order": self.order,
        }
        for layer, (weight, bias) in enumerate(
            zip(self.weights, self.biases, strict=True)
        ):
            arrays[f"W{layer}"] = weight
            arrays[f"b{layer}"] = bias
        for index, buffer in enumerate(self.velocity):
            arrays[f"velocity{index}"] = buffer
        for index, buffer in enumerate(self.second_moment):
            arrays[f"second_moment{index}"] = buffer
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TrainerState:
        """Rebuild a state from `to_arrays` output; raise ValueError if incomplete."""
        try:
            version = int(arrays["format"])
            if version != STATE_FORMAT:
                raise ValueError(
                    f"trainer state format {version} is not supported; this "
                    f"version reads format {STATE_FORMAT}"
                )
            return cls(
                step_count=int(arrays["step_count"]),
                weights=_numbered(arrays, "W"),
                biases=_numbered(arrays, "b"),
                optimizer_step_count=int(arrays["optimizer_step_count"]),
                velocity=_numbered(arrays, "velocity"),
                second_moment=_numbered(arrays, "second_moment"),
                mask_rng_state=json.loads(str(arrays["mask_rng_state"])),
                shuffle_rng_state=json.loads(str(arrays["shuffle_rng_state"])),
                order=np.asarray(arrays["order"], dtype=np.int64),
            )
        except KeyError as exc:
            raise ValueError(f"trainer state lacks the array {exc.args[0]!r}") from None


def _numbered(arrays: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """Collect prefix0, prefix1, ... until the first missing index."""
    found: list[np.ndarray] = []
    while f"{prefix}{len(found)}" in arrays:
        found.append(np.array(arrays[f"{prefix}{len(found)}"]))
    return found
