"""Uploaded images and videos, accepted only if they decode (``body_limit`` caps their size).

The client's file name and content type are ignored: a file is an image if Pillow decodes it as
one of a few plain formats, a video if PyAV finds a video stream in a known container and its
first frame decodes. A video's size and length come from its metadata; its frames are not all
decoded here (a job decodes only those it samples).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
from PIL import Image, UnidentifiedImageError

from videogen.media.frames import frame_count
from videogen.media.images import pillow_allows
from videogen.media.outputs import slugify
from videogen.server.errors import ApiError
from videogen.server.settings import Settings
from videogen.server.store import JobStore, UploadRow, new_id, utcnow

#: Pillow format -> (content type, suffix). GIF is here for stills; an animated one is a video.
IMAGE_FORMATS = {
    "PNG": ("image/png", ".png"),
    "JPEG": ("image/jpeg", ".jpg"),
    "WEBP": ("image/webp", ".webp"),
    "BMP": ("image/bmp", ".bmp"),
    "TIFF": ("image/tiff", ".tiff"),
    "GIF": ("image/gif", ".gif"),
}
#: one of the names of an FFmpeg demuxer -> (content type, suffix)
VIDEO_CONTAINERS = {
    "mp4": ("video/mp4", ".mp4"),
    "webm": ("video/webm", ".webm"),
    "gif": ("image/gif", ".gif"),
    "avi": ("video/x-msvideo", ".avi"),
}


VIDEO_FRAMES = "the video's frames have"


@dataclass(frozen=True)
class Media:
    kind: str  # "image" or "video"
    content_type: str
    suffix: str
    width: int
    height: int
    frames: int


#: bytes of the client's file name kept in the stored name (the uploads table holds 64 characters)
STORED_STEM_BYTES = 24


def too_large(what: str, limit_text: str) -> ApiError:
    return ApiError(413, f"file: {what}, more than the server's limit of {limit_text}", "file")


def receive_upload(source: BinaryIO, filename: str, settings: Settings, store: JobStore) -> UploadRow:
    """Store an uploaded file that decodes as an image or a video, and record it."""
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    upload_id = new_id()
    staging = settings.uploads_dir / f".{upload_id}.part"
    shown_name = printable_name(filename)
    # In a folder of its own under the client's name, so the outputs made from it are named after it.
    stored_name = f"{upload_id}/{slugify(Path(shown_name).stem, STORED_STEM_BYTES)}"
    try:
        size, sha256 = _copy(source, staging, settings.max_upload_bytes)
        media = inspect_media(staging, settings.max_upload_pixels, settings.max_upload_frames)
        stored_name += media.suffix
        stored = settings.uploads_dir / stored_name
        stored.parent.mkdir()
        staging.replace(stored)
    finally:
        staging.unlink(missing_ok=True)
    row = UploadRow(
        id=upload_id,
        kind=media.kind,
        content_type=media.content_type,
        filename=shown_name,
        stored_name=stored_name,
        size_bytes=size,
        width=media.width,
        height=media.height,
        frames=media.frames,
        sha256=sha256,
        created_at=utcnow(),
    )
    try:
        return store.add_upload(row)
    except BaseException:
        shutil.rmtree(stored.parent, ignore_errors=True)
        raise


def printable_name(filename: str) -> str:
    """The client's file name without folders or control characters, for display only."""
    name = "".join(char for char in Path(filename).name if char.isprintable())
    return name[:255] or "upload"


def _copy(source: BinaryIO, target: Path, max_bytes: int) -> tuple[int, str]:
    """Copy with a running size check and SHA-256; returns (bytes, hex digest)."""
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            size += len(block)
            if size > max_bytes:
                raise too_large(f"the file has more than {max_bytes} bytes", f"{max_bytes} bytes")
            digest.update(block)
            out.write(block)
    if size == 0:
        raise ApiError(422, "file: the file is empty (0 bytes)", "file")
    return size, digest.hexdigest()


def inspect_media(path: Path, max_pixels: int, max_frames: int) -> Media:
    """Decode the file as an image, else as a video; 415 when it is neither, 413 when too large."""
    media = _as_image(path, max_pixels) or _as_video(path, max_pixels, max_frames)
    if media is None:
        raise ApiError(
            415,
            "file: not an image (PNG, JPEG, WebP, BMP, TIFF, GIF) or video (MP4, WebM, AVI, GIF) "
            "that decodes; the content is checked, not the name",
            "file",
        )
    return media


def _check_pixels(width: int, height: int, max_pixels: int, what: str = "the image has") -> None:
    if width * height > max_pixels:
        raise too_large(f"{what} {width}x{height} = {width * height} pixels", f"{max_pixels} pixels")


def _as_image(path: Path, max_pixels: int) -> Media | None:
    try:
        with pillow_allows(max_pixels), Image.open(path, formats=list(IMAGE_FORMATS)) as image:
            if getattr(image, "n_frames", 1) > 1:
                return None  # an animation: a video
            _check_pixels(image.width, image.height, max_pixels)
            image.load()
            content_type, suffix = IMAGE_FORMATS[image.format]
            return Media("image", content_type, suffix, image.width, image.height, 1)
    except Image.DecompressionBombError:
        raise too_large("the image is a decompression bomb", f"{max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def _as_video(path: Path, max_pixels: int, max_frames: int) -> Media | None:
    """The file as a video, judged by its container's metadata: frame size and frame count
    (packets counted where the container states none) are checked before anything is decoded,
    then only the first frame is decoded, to prove that the stream decodes."""
    try:
        with av.open(str(path)) as container:
            names = set(container.format.name.split(","))
            known = [name for name in VIDEO_CONTAINERS if name in names]
            if not known or not container.streams.video:
                return None
            stream = container.streams.video[0]
            _check_pixels(stream.codec_context.width, stream.codec_context.height, max_pixels, VIDEO_FRAMES)
            frames = frame_count(container, stream, stop_after=max_frames + 1)
        if frames > max_frames:
            raise too_large(f"the video has more than {max_frames} frames", f"{max_frames} frames")
        size = _first_frame_size(path) if frames else None
    except (av.FFmpegError, ValueError, OSError):
        return None
    if size is None:
        return None
    _check_pixels(*size, max_pixels, VIDEO_FRAMES)  # the stream may differ from its header
    content_type, suffix = VIDEO_CONTAINERS[known[0]]
    return Media("video", content_type, suffix, *size, frames)


def _first_frame_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of the video's first frame, decoded; None when no frame decodes."""
    with av.open(str(path)) as container:
        first = next(container.decode(container.streams.video[0]), None)
    return None if first is None else (first.width, first.height)


def remove_staging_files(settings: Settings) -> None:
    """Drop staging files a crash left behind (complete uploads are kept: jobs refer to them)."""
    if settings.uploads_dir.is_dir():
        for part in settings.uploads_dir.glob(".*.part"):
            part.unlink(missing_ok=True)
