"""The ASGI application: `create_app()` wires settings, runs, routers and the page."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles
from threadpoolctl import threadpool_limits

from dropviz import __version__
from dropviz.api.errors import install_error_handlers
from dropviz.api.origins import allowed_origins
from dropviz.api.routes import datasets, evaluations, history, meta, runs, stream
from dropviz.api.security import AccessMiddleware, install_log_redaction
from dropviz.config import Settings, get_settings
from dropviz.datasets.uploads import UploadStore
from dropviz.memory import release_free_memory_every
from dropviz.runs.manager import RunManager, StoragePolicy
from dropviz.runs.restore import restore_runs
from dropviz.storage.store import RunStore

logger = logging.getLogger(__name__)

# How often the server hands the allocator's free pages back to the system.
MEMORY_RELEASE_SECONDS = 10.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The limit is process-wide, so the runs' worker threads inherit it.
        threadpool_limits(limits=settings.blas_threads)
        # uvicorn has configured its loggers by now, so the filter stays.
        install_log_redaction()
        store = RunStore(settings.state_dir, settings.storage_queue_items)
        manager: RunManager = app.state.runs
        manager.store = store
        await run_in_threadpool(restore_runs, manager, store)
        logger.info(
            "dropviz started: version=%s blas_threads=%d max_running_runs=%d "
            "data_dir=%s state_dir=%s token=%s",
            __version__,
            settings.blas_threads,
            settings.max_running_runs,
            settings.data_dir,
            settings.state_dir,
            "set" if settings.token is not None else "unset",
        )
        trimmer = asyncio.create_task(release_free_memory_every(MEMORY_RELEASE_SECONDS))
        yield
        trimmer.cancel()
        await run_in_threadpool(manager.shutdown)
        await run_in_threadpool(store.close)
        logger.info("dropviz stopped")

    app = FastAPI(
        title="dropviz",
        version=__version__,
        summary="Watch dropout train a neural network, one mini-batch at a time.",
        lifespan=lifespan,
        # NOTE: /docs loads Swagger UI from a CDN, so it is blank offline. The
        # swagger-ui-bundle package (4.15) cannot render FastAPI's OpenAPI 3.1.
    )
    app.state.settings = settings
    app.state.allowed_origins = allowed_origins(settings)
    app.state.runs = RunManager(
        settings.max_running_runs,
        settings.max_merge_steps,
        policy=StoragePolicy(
            checkpoint_steps=settings.checkpoint_steps,
            checkpoint_seconds=settings.checkpoint_seconds,
            max_stored_runs=settings.max_stored_runs,
            max_state_bytes=settings.max_state_bytes,
        ),
    )
    app.state.uploads = UploadStore(settings.max_uploaded_datasets)
    install_error_handlers(app)
    token = settings.token.get_secret_value() if settings.token is not None else None
    app.add_middleware(AccessMiddleware, token=token)

    api = APIRouter(prefix="/api")
    api.include_router(meta.router)
    api.include_router(datasets.router)
    api.include_router(runs.router)
    api.include_router(history.router)
    api.include_router(evaluations.router)
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
