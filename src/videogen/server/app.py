"""``create_app(settings)``: the FastAPI application, ready for uvicorn or for mounting a UI on.

The job service is ``app.state.service`` (a ``JobService``); the web UI, mounted at /ui, submits
and lists through it, so its jobs share the store, the queue and the history with the API.

In front of every route, in this order: the Host and cross-site checks (browser.py), the API key
(auth.py), then the body size limit (body_limit.py); each answers before a body is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from videogen import __version__
from videogen.server.api import service_routes, v1
from videogen.server.auth import ApiKeyRequired
from videogen.server.body_limit import BodySizeLimit
from videogen.server.browser import BrowserSafety, HostRule
from videogen.server.docs import install_docs
from videogen.server.errors import install_error_handlers
from videogen.server.service import JobService
from videogen.server.settings import Settings
from videogen.server.shutdown import on_stop_signal


def create_app(settings: Settings) -> FastAPI:
    hosts = HostRule.from_settings(settings)  # a bad --allowed-hosts fails before anything starts
    service = JobService(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)  # migrations and preloading block; the loop must not
        try:
            with on_stop_signal(service.bus.shut_down):  # end event streams as shutdown begins
                yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(
        title="videogen",
        version=__version__,
        description="Text, image and video to video: a job queue with history, progress events and files.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_upload_bytes=settings.max_upload_bytes)
    if settings.api_key is not None:
        app.add_middleware(ApiKeyRequired, key=settings.api_key)
    app.add_middleware(BrowserSafety, hosts=hosts)
    for router in (v1, service_routes):
        app.include_router(router)
    install_docs(app, settings.api_key)
    # The UI has no login of its own, so a server that requires an API key does not offer it.
    ui = settings.ui and settings.api_key is None

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/" if ui else "/docs")

    if ui:
        from videogen.server.ui import mount_ui  # Gradio is heavy; API-only servers skip importing it

        app = mount_ui(app, service)
    return app
