"""Training configuration: one frozen dataclass with the defaults the dashboard uses."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Activation = Literal["relu", "tanh", "sigmoid"]
MaskScope = Literal["per-step", "per-example"]
DatasetName = Literal["digits", "moons", "circles", "xor", "spiral", "gaussians"]

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "sigmoid")
MASK_SCOPES: tuple[str, ...] = ("per-step", "per-example")
DATASETS: tuple[str, ...] = ("digits", "moons", "circles", "xor", "spiral", "gaussians")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run's data, masks and weights.

    Two runs with equal configs (seed included) produce bit-identical masks and
    weights. Drop rates are probabilities of dropping a unit, in [0, 1).
    """

    dataset: DatasetName = "digits"
    n_samples: int = 600  # 2-D data sets only; digits always has 1,797 images
    noise: float = 0.2  # 2-D data sets only, in the units of the features
    test_fraction: float = 0.25
    hidden_sizes: tuple[int, ...] = (128, 128)
    activation: Activation = "relu"
    input_drop_rate: float = 0.2
    hidden_drop_rate: float = 0.5
    mask_scope: MaskScope = "per-step"
    learning_rate: float = 0.03
    batch_size: int = 8
    epochs: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("mask_scope", self.mask_scope, MASK_SCOPES)
        for name in ("input_drop_rate", "hidden_drop_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate!r}.")
        if not self.hidden_sizes or any(size < 1 for size in self.hidden_sizes):
            raise ValueError(
                f"hidden_sizes must list at least one positive size, "
                f"got {self.hidden_sizes!r}."
            )
        for name in ("batch_size", "epochs", "n_samples"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be at least 1, got {getattr(self, name)!r}."
                )
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(
                f"test_fraction must be in (0, 1), got {self.test_fraction!r}."
            )
        if not self.learning_rate > 0.0:
            raise ValueError(
                f"learning_rate must be positive, got {self.learning_rate!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["hidden_sizes"] = list(self.hidden_sizes)
        return values


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")
