"""Optional API key: ``Authorization: Bearer <key>`` on every route but /healthz."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from videogen.server.errors import ApiError

bearer = HTTPBearer(auto_error=False, description="The key given to `videogen serve --api-key`.")


def require_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    key: str | None = request.app.state.service.settings.api_key
    if key is None:
        return
    given = "" if credentials is None else credentials.credentials
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise ApiError(
            401,
            "a valid API key is required: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
