"""Request and response bodies of the REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dropviz.runs.evaluations import EvaluationRequest
from dropviz.training.config import IDX_DATASETS, TrainConfig, is_csv_dataset
from dropviz.training.data import DATASET_INFO, DatasetKind
from dropviz.training.ensemble import MC_GRID

MAX_UNITS_PER_LAYER = 4096
MAX_HIDDEN_LAYERS = 8
MAX_PARAMETERS = (
    20_000_000  # about 80 MB of float32 weights, plus as much again for deltas
)

# One step per 100 s. A rate near 0 made the pacing wait overflow the
# platform's time_t, which stopped the run.
MIN_STEPS_PER_SECOND = 0.01

FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
_DEFAULTS = TrainConfig()


class RunConfig(BaseModel):
    """A new run's configuration. Every field is optional: `{}` means all defaults."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        _DEFAULTS.dataset,
        max_length=64,
        description=(
            "Data set to train on: a name from GET /api/datasets, such as digits, "
            "mnist or csv:3f2a9c1b04de for an uploaded CSV."
        ),
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
        description="Share of samples held out; mnist and fashion-mnist use their "
        "test files instead.",
    )
    # NOTE: data_dir lets any client of the API make the server read the four
    # IDX file names in any folder that the server may read. That is accepted
    # while the server has no authentication and binds 127.0.0.1 by default.
    data_dir: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description=(
            "mnist and fashion-mnist only: absolute path of the folder that "
            "contains mnist/ or fashion-mnist/ with the IDX files. Null uses the "
            "server's DROPVIZ_DATA_DIR."
        ),
    )
    n_train: StrictInt | None = Field(
        _DEFAULTS.n_train,
        ge=1,
        le=10_000_000,
        description=(
            "Train on a seeded random subset of at most this many training "
            "examples; null uses all of them."
        ),
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
    hidden_drop_rates: list[Annotated[FiniteFloat, Field(ge=0.0, lt=1.0)]] | None = (
        Field(
            None,
            description=(
                "Drop probability of each hidden layer, input side first; "
                "null uses hidden_drop_rate for all."
            ),
        )
    )
    variant: Literal["dropout", "dropconnect"] = Field(
        _DEFAULTS.variant,
        description=(
            "dropout masks units; dropconnect masks each weight with the drop "
            "rate of its source layer."
        ),
    )
    scaling: Literal["inverted", "classic"] = Field(
        _DEFAULTS.scaling,
        description=(
            "inverted scales kept units by 1/keep in training; classic scales "
            "by keep at evaluation instead."
        ),
    )
    learning_rate: FiniteFloat = Field(
        _DEFAULTS.learning_rate,
        gt=0.0,
        le=10.0,
        description="Step size at the start of training.",
    )
    optimizer: Literal["sgd", "momentum", "nesterov", "adam"] = Field(
        _DEFAULTS.optimizer, description="Update rule."
    )
    momentum: FiniteFloat = Field(
        _DEFAULTS.momentum,
        ge=0.0,
        lt=1.0,
        description="Momentum coefficient of momentum and nesterov.",
    )
    adam_beta1: FiniteFloat = Field(_DEFAULTS.adam_beta1, ge=0.0, lt=1.0)
    adam_beta2: FiniteFloat = Field(_DEFAULTS.adam_beta2, ge=0.0, lt=1.0)
    adam_epsilon: FiniteFloat = Field(_DEFAULTS.adam_epsilon, gt=0.0, le=1.0)
    weight_decay: FiniteFloat = Field(
        _DEFAULTS.weight_decay,
        ge=0.0,
        le=1.0,
        description="L2 coefficient on weights (not biases).",
    )
    max_norm: FiniteFloat | None = Field(
        _DEFAULTS.max_norm,
        gt=0.0,
        le=1000.0,
        description="Bound on each unit's incoming weight norm; null for none.",
    )
    lr_schedule: Literal["constant", "step", "cosine"] = Field(
        _DEFAULTS.lr_schedule, description="Learning-rate schedule over the run."
    )
    lr_step_epochs: StrictInt = Field(
        _DEFAULTS.lr_step_epochs,
        ge=1,
        le=10_000,
        description="Epochs between decays of the step schedule.",
    )
    lr_step_factor: FiniteFloat = Field(
        _DEFAULTS.lr_step_factor,
        gt=0.0,
        lt=1.0,
        description="Factor applied at each decay of the step schedule.",
    )
    init: Literal["auto", "he", "glorot"] = Field(
        _DEFAULTS.init,
        description="Weight initialization; auto is He for relu, else Glorot.",
    )
    compact: StrictBool = Field(
        _DEFAULTS.compact,
        description=(
            "Train only the kept units' sub-matrices when masks are per step "
            "(same result as dense, to float32 rounding)."
        ),
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
        ge=MIN_STEPS_PER_SECOND,
        le=100_000.0,
        description="Steps per second, at least 0.01; null trains at full speed.",
    )

    @field_validator("dataset")
    @classmethod
    def _check_dataset(cls, dataset: str) -> str:
        if dataset not in DATASET_INFO and not is_csv_dataset(dataset):
            raise ValueError(
                f"use one of {', '.join(DATASET_INFO)}, or csv:<id> for an "
                "uploaded CSV; GET /api/datasets lists them"
            )
        return dataset

    @field_validator("data_dir")
    @classmethod
    def _check_data_dir(cls, data_dir: str | None, info: ValidationInfo) -> str | None:
        if data_dir is None:
            return None
        dataset = info.data.get("dataset")
        if dataset is not None and dataset not in IDX_DATASETS:
            raise ValueError(
                f"data_dir applies to {' and '.join(IDX_DATASETS)} only, not to "
                f"dataset {dataset!r}; leave it unset"
            )
        if "\x00" in data_dir or not Path(data_dir).is_absolute():
            raise ValueError(
                "use an absolute path, such as /srv/dropviz-data; a relative path "
                "would depend on the server's working directory"
            )
        return data_dir

    @field_validator("hidden_sizes")
    @classmethod
    def _check_parameter_count(
        cls, hidden_sizes: list[int], info: ValidationInfo
    ) -> list[int]:
        dataset = info.data.get("dataset")
        if dataset not in DATASET_INFO:
            # The dataset field reports its own error, and the server checks an
            # upload's layer sizes when it loads the upload.
            return hidden_sizes
        check_parameter_count(
            [
                DATASET_INFO[dataset].n_features,
                *hidden_sizes,
                DATASET_INFO[dataset].n_classes,
            ]
        )
        return hidden_sizes

    @field_validator("hidden_drop_rates")
    @classmethod
    def _check_rate_count(
        cls, rates: list[float] | None, info: ValidationInfo
    ) -> list[float] | None:
        sizes = info.data.get("hidden_sizes")
        if rates is not None and sizes is not None and len(rates) != len(sizes):
            raise ValueError(
                f"give one rate per hidden layer: {len(sizes)} rates for "
                f"hidden_sizes {sizes}, not {len(rates)}"
            )
        return rates

    @field_validator("variant")
    @classmethod
    def _check_variant_scope(cls, variant: str, info: ValidationInfo) -> str:
        if variant == "dropconnect" and info.data.get("mask_scope") == "per-example":
            raise ValueError(
                "DropConnect draws one weight mask per step; "
                "use mask_scope 'per-step' with it"
            )
        return variant

    def to_train_config(self) -> TrainConfig:
        values = self.model_dump(exclude={"max_steps_per_second"})
        values["hidden_sizes"] = tuple(values["hidden_sizes"])
        if values["hidden_drop_rates"] is not None:
            values["hidden_drop_rates"] = tuple(values["hidden_drop_rates"])
        return TrainConfig(**values)


def check_parameter_count(layer_sizes: list[int]) -> None:
    """Raise ValueError when a network of these layer sizes passes MAX_PARAMETERS."""
    count = sum(
        (a + 1) * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:], strict=True)
    )
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"these layers give {count:,} parameters and the maximum is "
            f"{MAX_PARAMETERS:,}; use fewer or smaller layers"
        )


class SpeedUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_steps_per_second: FiniteFloat | None = Field(
        ...,
        ge=MIN_STEPS_PER_SECOND,
        le=100_000.0,
        description="Steps per second, at least 0.01; null trains at full speed.",
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
    status: Literal[
        "created", "running", "paused", "interrupted", "finished", "stopped", "diverged"
    ]
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
    name: str = Field(description="Value for a run's `dataset` field.")
    description: str
    n_features: int
    n_classes: int
    input_shape: list[int] | None
    kind: DatasetKind = Field(
        description=(
            "bundled ships with scikit-learn, generated is drawn from n_samples "
            "and noise, idx is read from the data folder, csv was uploaded."
        )
    )
    available: bool = Field(description="False when the data set's files are missing.")
    hint: str | None = Field(
        description="Why an unavailable data set cannot load, and how to fix it."
    )


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str


class EvaluationIn(BaseModel):
    """An ensemble inference request on a run's current weights."""

    model_config = ConfigDict(extra="forbid")

    rule: Literal["weight_scaling", "mc", "exact"] = Field(
        "mc",
        description=(
            "weight_scaling: the deterministic network; mc: average k sampled "
            "sub-networks; exact: every mask of at most 16 units."
        ),
    )
    split: Literal["test", "train"] = Field("test", description="Examples to score.")
    ks: list[Annotated[StrictInt, Field(ge=1, le=1000)]] = Field(
        default_factory=lambda: list(MC_GRID),
        min_length=1,
        max_length=30,
        description="Ensemble sizes at which MC reports its error.",
    )
    repeats: StrictInt = Field(
        5, ge=1, le=50, description="Independent MC draws of each k, for the spread."
    )
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1, description="Seed of the MC draws.")
    layers: list[Annotated[StrictInt, Field(ge=0, le=MAX_HIDDEN_LAYERS)]] | None = (
        Field(
            None,
            min_length=1,
            description=(
                "Unit layers to enumerate (0 = input); null: every layer with "
                "dropout. The others use weight scaling."
            ),
        )
    )
    wait_seconds: FiniteFloat = Field(
        20.0,
        ge=0.0,
        le=600.0,
        description=(
            "How long to wait for the result; past it the reply is 202 with the "
            "job to poll."
        ),
    )

    def to_request(self) -> EvaluationRequest:
        return EvaluationRequest(
            rule=self.rule,
            split=self.split,
            ks=tuple(sorted(set(self.ks))),
            repeats=self.repeats,
            seed=self.seed,
            layers=tuple(self.layers) if self.layers is not None else None,
        )


class EvaluationOut(BaseModel):
    id: str
    run_id: str
    step: int = Field(
        description="Steps the run had completed when its weights were read."
    )
    rule: str
    status: Literal["running", "done", "cancelled", "failed"]
    progress: float
    result: dict[str, Any] | None
    error: str | None


MAX_PREDICT_WORK = 2_000_000  # points times k: one MC pass over this many rows


class PredictIn(BaseModel):
    """Points to predict: explicit `points`, a `grid` over a 2-D data set, or
    the first `count` examples of a split."""

    model_config = ConfigDict(extra="forbid")

    points: list[list[FiniteFloat]] | None = Field(
        None,
        max_length=20_000,
        description="Rows of features in the model's (standardized) space.",
    )
    grid: StrictInt | None = Field(
        None,
        ge=4,
        le=200,
        description=(
            "Points per axis of a grid over the data's range; 2-feature data sets only."
        ),
    )
    split: Literal["test", "train"] | None = Field(
        None, description="Predict on this split's examples instead of points."
    )
    count: StrictInt = Field(
        100,
        ge=1,
        le=2000,
        description="Examples of `split` to predict, from the first.",
    )
    indices: list[Annotated[StrictInt, Field(ge=0)]] | None = Field(
        None,
        max_length=2000,
        description="Examples of `split` to predict by position; replaces count.",
    )
    k: StrictInt = Field(50, ge=1, le=1000, description="Sub-networks MC averages.")
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1)
    subnetworks: StrictInt = Field(
        0, ge=0, le=16, description="Freshly sampled sub-networks to report one by one."
    )

    hidden_units: StrictBool = Field(
        False,
        description=(
            "Also return every hidden unit's activation (weight-scaled network); "
            "at most 256 hidden units in all and 2,500 points."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> PredictIn:
        given = [name for name in ("points", "grid", "split") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of points, grid or split; got {given or 'none'}"
            )
        return self


class PredictOut(BaseModel):
    n_points: int
    step: int = Field(
        description="Steps the run had completed when its weights were read."
    )
    hidden_activations: list[list[list[float]]] | None = Field(
        None, description="Per hidden layer, per unit, the activation at each point."
    )
    grid: dict[str, list[float]] | None = Field(
        None, description="Axis coordinates of a grid request: x then y, row-major."
    )
    labels: list[int] | None = Field(
        None, description="True classes of split examples."
    )
    weight_scaling: list[list[float]]
    mc: dict[str, Any]
    subnetworks: list[dict[str, Any]]


class StepOut(BaseModel):
    """One recorded step, read back from the run's step file."""

    step: int = Field(description="0-based step number.")
    epoch: int
    loss: float | None = Field(description="Mean cross-entropy, with dropout.")
    batch_accuracy: float | None
    mask_scope: Literal["per-step", "per-example", "weights"]
    masks: list[list[list[bool]]] = Field(
        description=(
            "[layer][row][unit], True = kept. One row per step, one per example "
            "of the mini-batch, or, for DropConnect (weights), one per source "
            "unit with a value per destination unit."
        )
    )
    weights: list[list[list[float]]] | None = Field(
        None,
        description="With ?weights=true: W[l] right after this step, [l][i][j].",
    )
    biases: list[list[float]] | None = Field(
        None, description="With ?weights=true: b[l] right after this step."
    )


class StepRangeOut(BaseModel):
    """Consecutive recorded steps, for playback; masks stay bit-packed."""

    run_id: str
    first_step: int
    step_count: int
    next_step: int | None = Field(
        description="The first step after this range, or null at the last one."
    )
    layer_sizes: list[int]
    mask_scope: Literal["per-step", "per-example", "weights"]
    epochs: list[int]
    losses: list[float | None]
    batch_accuracies: list[float | None]
    mask_rows: list[int]
    masks: list[str] = Field(
        description=(
            "Per step, base64 of every layer's mask block in the stream's bit "
            "layout (docs/protocol.md), each block with max_mask_rows rows and "
            "padded to 4 bytes."
        )
    )
    max_mask_rows: int
