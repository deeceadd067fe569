"""Health, defaults and the data set catalogue."""

from __future__ import annotations

from fastapi import APIRouter

from dropviz import __version__
from dropviz.api.schemas import DatasetOut, HealthOut, RunConfig
from dropviz.training.data import DATASET_INFO

router = APIRouter(tags=["meta"])


@router.get("/health")
def read_health() -> HealthOut:
    return HealthOut(status="ok", version=__version__)


@router.get("/defaults")
def read_defaults() -> RunConfig:
    """Return the configuration that an empty `POST /api/runs` body creates."""
    return RunConfig()


@router.get("/datasets")
def read_datasets() -> list[DatasetOut]:
    return [
        DatasetOut(
            name=info.name,
            description=info.description,
            n_features=info.n_features,
            n_classes=info.n_classes,
            input_shape=list(info.input_shape) if info.input_shape else None,
        )
        for info in DATASET_INFO.values()
    ]
