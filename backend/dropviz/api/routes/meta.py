"""Health and defaults."""

from __future__ import annotations

from fastapi import APIRouter

from dropviz import __version__
from dropviz.api.schemas import HealthOut, RunConfig

router = APIRouter(tags=["meta"])


@router.get("/health")
def read_health() -> HealthOut:
    return HealthOut(status="ok", version=__version__)


@router.get("/defaults")
def read_defaults() -> RunConfig:
    """Return the configuration that an empty `POST /api/runs` body creates."""
    return RunConfig()
