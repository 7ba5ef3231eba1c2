"""Frame arrays: quantising model output and reading input videos."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from videogen.errors import UserError

FOLDER_FPS = 8.0
"""Playback rate assumed for a folder of images, which carries no timing of its own."""

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})


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
    if not path.exists():
        raise UserError(f"video not found: {path}")
    if path.is_dir():
        return _read_folder(path, max_frames), FOLDER_FPS
    if path.stat().st_size == 0:
        raise UserError(f"video file is empty (0 bytes): {path}")
    return _read_file(path, max_frames)


def _read_file(path: Path, max_frames: int | None) -> tuple[np.ndarray, float]:
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"no video stream in {path}")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except av.FFmpegError as err:
        raise UserError(f"cannot decode video {path}: {err}") from err
    if not frames:
        raise UserError(f"video has no frames: {path}")
    return np.stack(frames), float(rate) if rate else FOLDER_FPS


def _read_folder(folder: Path, max_frames: int | None) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {folder}")
    frames = [_read_image(p) for p in files[:max_frames]]
    sizes = {f.shape for f in frames}
    if len(sizes) > 1:
        raise UserError(f"images in {folder} differ in size: {sorted(sizes)}")
    return np.stack(frames)


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise UserError(f"cannot read image {path}: {err}") from err
