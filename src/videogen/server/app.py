"""``create_app(settings)``: the FastAPI application, ready for uvicorn or for mounting a UI on.

The job service is ``app.state.service`` (a ``JobService``); the web UI, mounted at /ui, submits
and lists through it, so its jobs share the store, the queue and the history with the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from videogen import __version__
from videogen.server.api import open_routes, protected, v1
from videogen.server.body_limit import BodySizeLimit
from videogen.server.errors import install_error_handlers
from videogen.server.service import JobService
from videogen.server.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    service = JobService(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)  # migrations and preloading block; the loop must not
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(
        title="videogen",
        version=__version__,
        description="Text, image and video to video: a job queue with history, progress events and files.",
        lifespan=lifespan,
    )
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_upload_bytes=settings.max_upload_bytes)
    for router in (v1, protected, open_routes):
        app.include_router(router)
    # The UI has no login of its own, so a server that requires an API key does not offer it.
    if settings.ui and settings.api_key is None:
        from videogen.server.ui import mount_ui  # Gradio is heavy; API-only servers skip importing it

        app = mount_ui(app, service)
    return app
