"""Output files: paths that cannot leave the job's folder, and responses browsers can seek in.

Starlette's FileResponse answers ``Range`` requests (206 with Content-Range, 416 when out of the
file), so a video element can jump to any point without downloading the whole file.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import FileResponse

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


def file_response(path: Path) -> FileResponse:
    """The file inline, with its content type and byte-range support."""
    media_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media_type, filename=path.name, content_disposition_type="inline")
