"""The REST service: ``create_app(settings)`` builds the FastAPI app; ``JobService`` is its core.

Layout: ``settings`` (Settings), ``database`` (engine, migrations), ``store`` (tables, repository),
``admission`` (which requests run here), ``service`` (JobService), ``worker`` (runs jobs),
``events`` (progress to SSE), ``uploads``, ``files`` (range responses), ``metrics``, ``auth``,
``errors`` (JSON errors), ``schemas`` (API models), ``api`` (routes), ``app`` (create_app).

The names below are imported on first use, so reading ``Settings`` (as the command line does for
its defaults) does not load the web stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videogen.server.app import create_app
    from videogen.server.service import JobService
    from videogen.server.settings import Settings

__all__ = ["JobService", "Settings", "create_app"]
_MODULES = {"create_app": "app", "JobService": "service", "Settings": "settings"}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
