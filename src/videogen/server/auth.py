"""Optional API key: ``Authorization: Bearer <key>`` on every path but /healthz.

The key is checked by ASGI middleware in front of everything, before a route reads its body: a
request without the key is answered 401 at once, however large the upload it announces, and the
API docs (/docs, /redoc, /openapi.json) are not shown to it either.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from videogen.server.errors import error_response

#: paths answered without the key (load balancers and orchestrators probe them)
OPEN_PATHS = frozenset({"/healthz"})
MESSAGE = "a valid API key is required: Authorization: Bearer <key>"


def has_key(headers: Headers, key: str) -> bool:
    scheme, _, given = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), key.encode())


class ApiKeyRequired:
    """401 for a request without the key; the unread body is dropped with the connection."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] in ("http", "websocket")
            and scope["path"] not in OPEN_PATHS
            and not has_key(Headers(scope=scope), self.key)
        ):
            headers = {"WWW-Authenticate": "Bearer", "Connection": "close"}
            await error_response(401, MESSAGE, "Authorization", headers=headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)
