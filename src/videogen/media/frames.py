"""Frame arrays: quantising model output, and reading input videos one frame at a time.

An input clip is probed from its container's metadata (frame count, frame size, rate) without
decoding, and then only the frames a caller asks for are converted, one at a time, so memory
holds one full-size frame however long or large the clip is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer
from av.video.stream import VideoStream
from PIL import Image

from videogen.errors import UserError
from videogen.media.images import open_image

FOLDER_FPS = 8.0
"""Playback rate assumed for a folder of images, which carries no timing of its own."""

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})


@dataclass(frozen=True)
class VideoInfo:
    """What a clip's container (or folder) says about it; no frame is decoded to learn it."""

    frames: int
    width: int
    height: int
    #: frames per second; None for a folder of images, which has no timing
    fps: float | None


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Quantise float frames in [0, 1] (any shape ending in H, W, 3) to uint8.

    Rounds to nearest, as diffusers' ``numpy_to_pil`` does, so files match its images.
    """
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def read_video(path: Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Read a video file (mp4, webm, gif, ...) or a folder of images.

    Returns uint8 RGB frames of shape (F, H, W, 3) and the frame rate. A folder's images are
    taken in name order and played at ``FOLDER_FPS``. ``max_frames`` keeps only the first frames.
    """
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    path = Path(path)
    info = probe_video(path)
    indices = None if max_frames is None else range(max_frames)
    frames = [np.asarray(image) for _, image in iter_frames(path, indices)]
    if not frames:
        raise UserError(f"video has no frames: {path}")
    sizes = {frame.shape for frame in frames}
    if len(sizes) > 1:
        raise UserError(f"frames of {path} differ in size: {sorted(sizes)}")
    return np.stack(frames), info.fps or FOLDER_FPS


def probe_video(path: Path, max_pixels: int | None = None) -> VideoInfo:
    """Frame count, frame size and rate of a video file or folder of images, without decoding.

    A file's count is its stream's stated frame count or, where the container states none
    (WebM), its packets counted. Frames over ``max_pixels`` are refused here.
    """
    path = _existing(path)
    if path.is_dir():
        files = _folder_images(path)
        with open_image(files[0], max_pixels, "video") as first:
            width, height = first.size
        return VideoInfo(len(files), width, height, None)
    with _open_video(path) as (container, stream):
        width, height = stream.codec_context.width, stream.codec_context.height
        check_frame_pixels(path, width, height, max_pixels)
        frames = frame_count(container, stream)
        rate = stream.average_rate or stream.guessed_rate
    if frames == 0:
        raise UserError(f"video has no frames: {path}")
    return VideoInfo(frames, width, height, float(rate) if rate else None)


def frame_count(container: InputContainer, stream: VideoStream, stop_after: int | None = None) -> int:
    """The stream's frame count as the container states it, else its packets counted (none is
    decoded); counting stops at ``stop_after``, enough to tell that a limit is exceeded."""
    if stream.frames:
        return stream.frames
    count = 0
    for packet in container.demux(stream):
        count += packet.size > 0  # the demuxer ends with an empty flush packet
        if count == stop_after:
            break
    return count


def iter_frames(
    path: Path, indices: Sequence[int] | None = None, max_pixels: int | None = None
) -> Iterator[tuple[int, Image.Image]]:
    """(index, RGB image) for each of the ascending ``indices`` (every frame when None).

    A file is decoded up to the last index (the frames before it are needed to reach it), but
    only the wanted frames are converted, one at a time; a folder opens only the wanted files.
    Iteration ends early where the clip does.
    """
    path = _existing(path)
    if path.is_dir():
        files = _folder_images(path)
        for index in range(len(files)) if indices is None else indices:
            if index >= len(files):
                return
            with open_image(files[index], max_pixels, "video") as image:
                yield index, image.convert("RGB")
        return
    if indices is not None and len(indices) == 0:
        return
    wanted = None if indices is None else set(indices)
    last = None if indices is None else max(indices)
    with _open_video(path) as (container, stream):
        for index, frame in enumerate(container.decode(stream)):
            if wanted is None or index in wanted:
                check_frame_pixels(path, frame.width, frame.height, max_pixels)
                # not frame.to_image(): it holds three full-size copies of the frame at once
                yield index, Image.fromarray(frame.to_ndarray(format="rgb24"))
            if index == last:
                return


def sample_indices(length: int, count: int) -> list[int]:
    """``count`` frame numbers spread evenly over a clip of ``length`` frames (np.linspace,
    rounded; numbers repeat when the clip is shorter)."""
    return np.linspace(0, length - 1, count).round().astype(int).tolist()


def check_frame_pixels(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise UserError(
            f"video: {path.name!r} has frames of {width}x{height} = {width * height} pixels, "
            f"more than the limit of {max_pixels} (max_input_pixels)"
        )


def _existing(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"video not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"video file is empty (0 bytes): {path}")
    return path


@contextmanager
def _open_video(path: Path) -> Iterator[tuple[InputContainer, VideoStream]]:
    """The file's container and first video stream; FFmpeg's errors become UserErrors."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"no video stream in {path}")
            yield container, container.streams.video[0]
    except av.FFmpegError as err:
        raise UserError(f"cannot decode video {path}: {err}") from err


def _folder_images(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {folder}")
    return files
