"""Training configuration: one frozen dataclass with the defaults the dashboard uses."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Activation = Literal["relu", "tanh", "sigmoid"]
MaskScope = Literal["per-step", "per-example"]
Variant = Literal["dropout", "dropconnect"]
Scaling = Literal["inverted", "classic"]
OptimizerName = Literal["sgd", "momentum", "nesterov", "adam"]
Schedule = Literal["constant", "step", "cosine"]
InitName = Literal["auto", "he", "glorot"]

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "sigmoid")
MASK_SCOPES: tuple[str, ...] = ("per-step", "per-example")
DATASETS: tuple[str, ...] = ("digits", "moons", "circles", "xor", "spiral", "gaussians")
VARIANTS: tuple[str, ...] = ("dropout", "dropconnect")
SCALINGS: tuple[str, ...] = ("inverted", "classic")
OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adam")
SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine")
INITS: tuple[str, ...] = ("auto", "he", "glorot")
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
    # Drop rate of each hidden layer, input side first; None uses hidden_drop_rate.
    hidden_drop_rates: tuple[float, ...] | None = None
    # "dropout" masks units. "dropconnect" masks each weight instead, with the
    # drop rate of the weight's source layer.
    variant: Variant = "dropout"
    # "inverted" scales kept units by 1/keep in training. "classic" trains
    # unscaled and multiplies each layer's input by keep at evaluation.
    scaling: Scaling = "inverted"
    learning_rate: float = 0.03
    optimizer: OptimizerName = "sgd"
    momentum: float = 0.9  # "momentum" and "nesterov" only
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    weight_decay: float = 0.0  # L2 coefficient on weights, not on biases
    max_norm: float | None = None  # bound on the norm of each unit's incoming weights
    lr_schedule: Schedule = "constant"
    lr_step_epochs: int = 10  # "step" schedule: epochs between two decays
    lr_step_factor: float = 0.5  # "step" schedule: factor applied at each decay
    init: InitName = "auto"  # "auto" is He for relu and Glorot otherwise
    # Train only the kept units' rows and columns when masks are per step; the
    # result matches the dense masked step to float32 rounding.
    compact: bool = True
    batch_size: int = 8
    epochs: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        _check_dataset(self.dataset, self.data_dir)
        choices = {
            "activation": (self.activation, ACTIVATIONS),
            "mask_scope": (self.mask_scope, MASK_SCOPES),
            "variant": (self.variant, VARIANTS),
            "scaling": (self.scaling, SCALINGS),
            "optimizer": (self.optimizer, OPTIMIZERS),
            "lr_schedule": (self.lr_schedule, SCHEDULES),
            "init": (self.init, INITS),
        }
        for name, (choice, allowed) in choices.items():
            if choice not in allowed:
                raise ValueError(
                    f"{name} must be one of {', '.join(allowed)}; got {choice!r}."
                )

        if not self.hidden_sizes or any(size < 1 for size in self.hidden_sizes):
            raise ValueError(
                "hidden_sizes must list at least one positive size, "
                f"got {self.hidden_sizes!r}."
            )
        if self.n_train is not None and self.n_train < 1:
            raise ValueError(
                f"n_train must be at least 1 or None, got {self.n_train!r}."
            )
        rates = [("input_drop_rate", self.input_drop_rate)]
        rates.append(("hidden_drop_rate", self.hidden_drop_rate))
        if self.hidden_drop_rates is not None:
            if len(self.hidden_drop_rates) != len(self.hidden_sizes):
                raise ValueError(
                    f"hidden_drop_rates has {len(self.hidden_drop_rates)} rates but "
                    f"hidden_sizes has {len(self.hidden_sizes)} layers; give one rate "
                    "per hidden layer."
                )
            rates += [("hidden_drop_rates", rate) for rate in self.hidden_drop_rates]
        for name, rate in rates:
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate!r}.")
        if self.variant == "dropconnect" and self.mask_scope != "per-step":
            raise ValueError(
                "DropConnect draws one weight mask per step; set mask_scope to "
                f"'per-step' (got {self.mask_scope!r})."
            )

        at_least_one = {
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "n_samples": self.n_samples,
            "lr_step_epochs": self.lr_step_epochs,
        }
        for name, count in at_least_one.items():
            if count < 1:
                raise ValueError(f"{name} must be at least 1, got {count!r}.")
        positive = {
            "learning_rate": self.learning_rate,
            "adam_epsilon": self.adam_epsilon,
        }
        if self.max_norm is not None:
            positive["max_norm"] = self.max_norm
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}.")
        unit_interval = {
            "momentum": self.momentum,
            "adam_beta1": self.adam_beta1,
            "adam_beta2": self.adam_beta2,
            "lr_step_factor": self.lr_step_factor,
        }
        for name, fraction in unit_interval.items():
            if not 0.0 <= fraction < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {fraction!r}.")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(
                f"test_fraction must be in (0, 1), got {self.test_fraction!r}."
            )
        if self.weight_decay < 0:
            raise ValueError(
                f"weight_decay must be at least 0, got {self.weight_decay!r}."
            )

    @property
    def layer_drop_rates(self) -> list[float]:
        """Return the drop rate of each masked unit layer: input first, then hidden."""
        hidden = self.hidden_drop_rates or (self.hidden_drop_rate,) * len(
            self.hidden_sizes
        )
        return [self.input_drop_rate, *hidden]

    @property
    def uses_compact_step(self) -> bool:
        """Whether steps train through gathered sub-matrices instead of dense masks."""
        return (
            self.compact and self.variant == "dropout" and self.mask_scope == "per-step"
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from `to_dict` output; raise ValueError if invalid."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        values = dict(values)
        values["hidden_sizes"] = tuple(values.get("hidden_sizes", cls.hidden_sizes))
        if values.get("hidden_drop_rates") is not None:
            values["hidden_drop_rates"] = tuple(values["hidden_drop_rates"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(f"invalid config: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["hidden_sizes"] = list(self.hidden_sizes)
        if self.hidden_drop_rates is not None:
            values["hidden_drop_rates"] = list(self.hidden_drop_rates)
        return values


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
