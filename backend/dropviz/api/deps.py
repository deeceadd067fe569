"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dropviz.config import Settings
from dropviz.runs.manager import RunManager
from dropviz.runs.run import Run


def get_manager(request: Request) -> RunManager:
    manager: RunManager = request.app.state.runs
    return manager


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ManagerDep = Annotated[RunManager, Depends(get_manager)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_run(run_id: str, manager: ManagerDep) -> Run:
    return manager.get(run_id)


RunDep = Annotated[Run, Depends(get_run)]
