"""The API's docs: Swagger UI at /docs and ReDoc at /redoc, rendered from the app's own copies of
their scripts (the fastapi-offline package ships them), so they work with no network; and an
OpenAPI document that says what this server does.

FastAPI's generated document is adjusted where the server answers other than FastAPI assumes:
every 422 is an ErrorOut (our handler), not FastAPI's HTTPValidationError; writes may get a 403
(browser.py); and only a server with an API key lists the bearer scheme and a 401 on each
operation but /healthz (auth.py is middleware, which FastAPI does not see).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from videogen.server.auth import MESSAGE, OPEN_PATHS
from videogen.server.browser import STATE_CHANGING

ASSETS_URL = "/docs/assets"
#: the pages load nothing from elsewhere (ReDoc would fetch its "by Redocly" logo from a CDN)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:"
)
ERROR_OUT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
SCHEME = "apiKey"


def assets_dir() -> Path:
    """swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI, api_key: str | None) -> None:
    """Serve /docs, /redoc and their assets; make /openapi.json describe this server.

    The app must be made with ``docs_url=None, redoc_url=None``.
    """
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return offline(
            get_swagger_ui_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title=f"{title} API",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
                swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
            )
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return offline(
            get_redoc_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title=f"{title} API",
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )

    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            describe_errors(document)
            if api_key is not None:
                require_key(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def offline(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
    ]


def describe_errors(document: dict[str, Any]) -> None:
    """422s are ErrorOut; state-changing operations may be refused as cross-site."""
    for _path, method, operation in operations(document):
        responses = operation["responses"]
        if "422" in responses:
            responses["422"] = {"description": "a field is invalid: ErrorOut names it", "content": ERROR_OUT}
        if method.upper() in STATE_CHANGING:
            responses["403"] = {
                "description": "a request from another site's page (Origin, Sec-Fetch-Site)",
                "content": ERROR_OUT,
            }
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def require_key(document: dict[str, Any]) -> None:
    document.setdefault("components", {})["securitySchemes"] = {
        SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "the key given to `videogen serve --api-key`",
        }
    }
    for path, _method, operation in operations(document):
        if path not in OPEN_PATHS:
            operation["security"] = [{SCHEME: []}]
            operation["responses"]["401"] = {"description": MESSAGE, "content": ERROR_OUT}
