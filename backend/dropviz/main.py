"""The ASGI application: `create_app()` wires settings, runs, routers and the page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from threadpoolctl import threadpool_limits

from dropviz import __version__
from dropviz.api.errors import install_error_handlers
from dropviz.api.origins import allowed_origins
from dropviz.api.routes import meta, runs, stream
from dropviz.config import Settings, get_settings
from dropviz.runs.manager import RunManager

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The limit is process-wide, so the runs' worker threads inherit it.
        threadpool_limits(limits=settings.blas_threads)
        logger.info(
            "dropviz started: version=%s blas_threads=%d max_running_runs=%d",
            __version__,
            settings.blas_threads,
            settings.max_running_runs,
        )
        yield
        app.state.runs.shutdown()
        logger.info("dropviz stopped")

    app = FastAPI(
        title="dropviz",
        version=__version__,
        summary="Watch dropout train a neural network, one mini-batch at a time.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.allowed_origins = allowed_origins(settings)
    app.state.runs = RunManager(settings.max_running_runs, settings.max_merge_steps)
    install_error_handlers(app)

    api = APIRouter(prefix="/api")
    api.include_router(meta.router)
    api.include_router(runs.router)
    app.include_router(api)
    app.include_router(stream.router)

    if settings.frontend_dir.is_dir():
        app.mount(
            "/",
            StaticFiles(directory=settings.frontend_dir, html=True),
            name="frontend",
        )
    else:
        logger.warning(
            "frontend folder not found, serving the API only: frontend_dir=%s "
            "(set DROPVIZ_FRONTEND_DIR to the repository's frontend folder)",
            settings.frontend_dir,
        )
    return app
