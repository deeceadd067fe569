"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dropviz.config import Settings
from dropviz.datasets.uploads import UploadStore
from dropviz.runs.manager import RunManager
from dropviz.runs.run import Run


def get_manager(request: Request) -> RunManager:
    manager: RunManager = request.app.state.runs
    return manager


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_uploads(request: Request) -> UploadStore:
    uploads: UploadStore = request.app.state.uploads
    return uploads


ManagerDep = Annotated[RunManager, Depends(get_manager)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
UploadsDep = Annotated[UploadStore, Depends(get_uploads)]


def get_run(run_id: str, manager: ManagerDep) -> Run:
    return manager.get(run_id)


RunDep = Annotated[Run, Depends(get_run)]
