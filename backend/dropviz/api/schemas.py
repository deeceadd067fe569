"""Request and response bodies of the REST API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
)

from dropviz.training.config import TrainConfig
from dropviz.training.data import DATASET_INFO

MAX_UNITS_PER_LAYER = 4096
MAX_HIDDEN_LAYERS = 8
MAX_PARAMETERS = (
    20_000_000  # about 80 MB of float32 weights, plus as much again for deltas
)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
_DEFAULTS = TrainConfig()


class RunConfig(BaseModel):
    """A new run's configuration. Every field is optional: `{}` means all defaults."""

    model_config = ConfigDict(extra="forbid")

    dataset: Literal["digits", "moons", "circles", "xor", "spiral", "gaussians"] = (
        Field(_DEFAULTS.dataset, description="Data set to train on.")
    )
    n_samples: StrictInt = Field(
        _DEFAULTS.n_samples, ge=20, le=100_000, description="Samples of a 2-D data set."
    )
    noise: FiniteFloat = Field(
        _DEFAULTS.noise, ge=0.0, le=5.0, description="Noise level of a 2-D data set."
    )
    test_fraction: FiniteFloat = Field(
        _DEFAULTS.test_fraction,
        ge=0.05,
        le=0.9,
        description="Share of samples held out.",
    )
    hidden_sizes: list[Annotated[StrictInt, Field(ge=1, le=MAX_UNITS_PER_LAYER)]] = (
        Field(
            default_factory=lambda: list(_DEFAULTS.hidden_sizes),
            min_length=1,
            max_length=MAX_HIDDEN_LAYERS,
            description="Units of each hidden layer, input side first.",
        )
    )
    activation: Literal["relu", "tanh", "sigmoid"] = Field(
        _DEFAULTS.activation, description="Activation of the hidden layers."
    )
    input_drop_rate: FiniteFloat = Field(
        _DEFAULTS.input_drop_rate,
        ge=0.0,
        lt=1.0,
        description="Drop probability of inputs.",
    )
    hidden_drop_rate: FiniteFloat = Field(
        _DEFAULTS.hidden_drop_rate,
        ge=0.0,
        lt=1.0,
        description="Drop probability of hidden units.",
    )
    mask_scope: Literal["per-step", "per-example"] = Field(
        _DEFAULTS.mask_scope,
        description="One mask per layer per mini-batch, or one per example.",
    )
    learning_rate: FiniteFloat = Field(
        _DEFAULTS.learning_rate, gt=0.0, le=10.0, description="SGD step size."
    )
    batch_size: StrictInt = Field(
        _DEFAULTS.batch_size, ge=1, le=4096, description="Examples per mini-batch."
    )
    epochs: StrictInt = Field(
        _DEFAULTS.epochs, ge=1, le=10_000, description="Passes over the training set."
    )
    seed: StrictInt = Field(
        _DEFAULTS.seed,
        ge=0,
        le=2**32 - 1,
        description="Seed of every random draw of the run.",
    )
    max_steps_per_second: FiniteFloat | None = Field(
        None,
        gt=0.0,
        le=100_000.0,
        description="Training pace; null trains at full speed.",
    )

    @field_validator("hidden_sizes")
    @classmethod
    def _check_parameter_count(
        cls, hidden_sizes: list[int], info: ValidationInfo
    ) -> list[int]:
        dataset = info.data.get("dataset")
        if dataset not in DATASET_INFO:
            return hidden_sizes  # the dataset field reports its own error
        sizes = [
            DATASET_INFO[dataset].n_features,
            *hidden_sizes,
            DATASET_INFO[dataset].n_classes,
        ]
        count = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        if count > MAX_PARAMETERS:
            raise ValueError(
                f"these layers give {count:,} parameters and the maximum is "
                f"{MAX_PARAMETERS:,}; use fewer or smaller layers"
            )
        return hidden_sizes

    def to_train_config(self) -> TrainConfig:
        values = self.model_dump(exclude={"max_steps_per_second"})
        values["hidden_sizes"] = tuple(values["hidden_sizes"])
        return TrainConfig(**values)


class SpeedUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_steps_per_second: FiniteFloat | None = Field(
        ...,
        gt=0.0,
        le=100_000.0,
        description="Training pace; null trains at full speed.",
    )


class LatestMetrics(BaseModel):
    batch_loss: float | None
    batch_accuracy: float | None
    train_loss: float | None
    train_accuracy: float | None
    test_loss: float | None
    test_accuracy: float | None


class RunOut(BaseModel):
    id: str
    status: Literal["created", "running", "paused", "finished", "stopped", "diverged"]
    config: dict[str, Any]
    max_steps_per_second: float | None
    layer_sizes: list[int]
    input_shape: list[int] | None
    step: int = Field(description="Steps completed.")
    epoch: int = Field(description="Epoch of the next step, 0-based.")
    steps_per_epoch: int
    total_steps: int
    train_size: int
    test_size: int
    latest: LatestMetrics
    final_test_accuracy: float | None
    diverged_step: int | None
    error: str | None
    created_at: str
    stream_clients: int = Field(description="Open WebSocket streams of this run.")


class EpochOut(BaseModel):
    epoch: int
    step: int
    train_loss: float | None
    train_accuracy: float | None
    test_loss: float | None
    test_accuracy: float | None


class MetricsOut(BaseModel):
    epochs: list[EpochOut]


class DatasetOut(BaseModel):
    name: str
    description: str
    n_features: int
    n_classes: int
    input_shape: list[int] | None


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
