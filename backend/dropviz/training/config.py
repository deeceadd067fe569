"""Training configuration: one frozen dataclass with the defaults the dashboard uses."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

Activation = Literal["relu", "tanh", "sigmoid"]
MaskScope = Literal["per-step", "per-example"]

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "sigmoid")
MASK_SCOPES: tuple[str, ...] = ("per-step", "per-example")
DATASETS: tuple[str, ...] = ("digits", "moons", "circles", "xor", "spiral", "gaussians")
IDX_DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist")  # IDX files in data_dir
# An uploaded CSV is named "csv:" and 12 hexadecimal digits, for example
# "csv:3f2a9c1b04de"; the server assigns the id at upload.
CSV_DATASET_PATTERN = re.compile(r"csv:[0-9a-f]{12}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run's data, masks and weights.

    Two runs with equal configs (seed included) produce bit-identical masks and
    weights. Drop rates are probabilities of dropping a unit, in [0, 1).
    """

    dataset: str = "digits"
    n_samples: int = 600  # 2-D data sets only; digits always has 1,797 images
    # 2-D data sets only, in the units of the points before standardization
    noise: float = 0.2
    test_fraction: float = 0.25  # not for IDX data sets: they have a test file
    # IDX data sets only: the folder that contains mnist/ or fashion-mnist/
    data_dir: str | None = None
    n_train: int | None = None  # at most this many training examples; None: all
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
        _check_dataset(self.dataset, self.data_dir)
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
        if self.n_train is not None and self.n_train < 1:
            raise ValueError(
                f"n_train must be at least 1 or None, got {self.n_train!r}."
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


def is_csv_dataset(name: str) -> bool:
    return CSV_DATASET_PATTERN.fullmatch(name) is not None


def _check_dataset(name: str, data_dir: str | None) -> None:
    if name not in DATASETS + IDX_DATASETS and not is_csv_dataset(name):
        raise ValueError(
            f"dataset must be one of {', '.join(DATASETS + IDX_DATASETS)}, or "
            f"csv:<id> for an uploaded CSV; got {name!r}."
        )
    if data_dir is not None and name not in IDX_DATASETS:
        raise ValueError(
            f"data_dir applies to {' and '.join(IDX_DATASETS)} only, not to "
            f"dataset {name!r}; leave it unset."
        )
