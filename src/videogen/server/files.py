"""Output files: paths that cannot leave the job's folder, and responses browsers can seek in.

Starlette's FileResponse answers ``Range`` requests (206 with Content-Range), so a video element can
jump to any point without downloading the whole file; a range it cannot serve is answered here, as
JSON like every other error: 416 (with ``Content-Range: bytes */<size>``) for one outside the file,
400 for one that is not a byte range.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from videogen.server.errors import ApiError, error_response

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".gif": "image/gif",
    ".png": "image/png",
    ".json": "application/json",
}


def contained_file(folder: Path, relative: str) -> Path | None:
    """``folder/relative`` if it is a regular file inside ``folder`` once links and ``..`` are resolved."""
    try:
        root = folder.resolve()
        target = (root / relative).resolve()
    except (OSError, ValueError):  # a NUL byte, a link loop
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


class OutputFile(FileResponse):
    """A FileResponse whose range errors are ErrorOut JSON instead of plain text.

    Made with its ``stat_result`` (``file_response`` does), so the checks see the served size.
    """

    stat_result: os.stat_result

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        http_range, if_range = headers.get("range"), headers.get("if-range")
        if http_range is not None and (if_range is None or self._should_use_range(if_range)):
            size = self.stat_result.st_size
            try:
                self._parse_range_header(http_range, size)
            except MalformedRangeHeader as exc:
                message = f"Range: {http_range!r} is not a byte range ({exc.content})"
                await error_response(400, message, "Range")(scope, receive, send)
                return
            except RangeNotSatisfiable:
                message = f"Range: {http_range!r} starts beyond the file's {size} bytes"
                response = error_response(416, message, "Range", headers={"Content-Range": f"bytes */{size}"})
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def file_response(path: Path) -> OutputFile:
    """The file inline, with its content type and byte-range support."""
    media_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    try:
        stat_result = path.stat()
    except FileNotFoundError:  # deleted with its job since it was found
        raise ApiError(404, f"the file {path.name!r} no longer exists") from None
    return OutputFile(
        path,
        media_type=media_type,
        filename=path.name,
        content_disposition_type="inline",
        stat_result=stat_result,
    )
