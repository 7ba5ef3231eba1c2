"""Request bodies are cut off once they pass their limit, while they arrive: before Starlette
buffers a JSON body in memory or spools an upload to disk."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from videogen.server.errors import ApiError, error_response

API_PREFIX = "/v1/"
UPLOADS_PATH = "/v1/uploads"
#: a generation request is a few hundred bytes of JSON
MAX_JSON_BYTES = 2**20
#: room for the multipart framing around an uploaded file
MULTIPART_OVERHEAD = 64 * 1024


class BodySizeLimit:
    """ASGI middleware: 413 for an upload over ``max_upload_bytes`` or another /v1 body over 1 MiB.

    Other paths (a UI mounted beside the API) keep their own rules.
    """

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        upload = scope["path"] == UPLOADS_PATH
        field, limit = ("file", self.max_upload_bytes) if upload else ("body", MAX_JSON_BYTES)
        allowed = limit + MULTIPART_OVERHEAD if upload else limit

        def too_large(size: str) -> ApiError:
            return ApiError(413, f"{field}: {size} bytes, more than the server's limit of {limit}", field)

        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > allowed:
            detail = too_large(f"the request has {int(length)}").detail
            response = error_response(413, detail, field, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > allowed:
                raise too_large(f"the request has more than {allowed}")
            return message

        await self.app(scope, limited_receive, send)
