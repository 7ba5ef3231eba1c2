"""Conditioning inputs: read the request's image or video, fit it to the request's size, record it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from videogen.catalog import ModelSpec
from videogen.errors import FieldError
from videogen.families.base import Inputs
from videogen.media import read_video
from videogen.media.images import fit_image, load_image
from videogen.media.prepare import prepare_object_image
from videogen.request import Request


def load_inputs(request: Request, spec: ModelSpec) -> tuple[Inputs, dict[str, dict[str, str]]]:
    """Decoded, fitted inputs for a resolved request, and a record of the files (name, SHA-256).

    Orbit models (SV3D) get the object centred on white instead of a plain fit.
    """
    if request.image:
        path = Path(request.image)
        image = load_image(path, request.max_input_pixels)
        if spec.orbit:
            fitted = prepare_object_image(
                image, request.width, request.image_frame_ratio, request.remove_background
            )
        else:
            fitted = fit_image(image, request.width, request.height, request.fit, request.background)
        return Inputs(image=fitted), {"image": describe_file(path)}
    if request.video:
        path = Path(request.video)
        frames, _ = read_video(path)
        frames = fit_frames(sample_frames(frames, request.num_frames), request)
        return Inputs(video=frames), {"video": describe_file(path)}
    return Inputs(), {}


def video_length(path: str) -> int:
    """Number of frames in a video file or folder (decodes it; inputs are short clips)."""
    frames, _ = read_video(Path(path))
    return len(frames)


def sample_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """``count`` frames spread evenly over the clip (repeats frames when the clip is shorter)."""
    indices = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return frames[indices]


def fit_frames(frames: np.ndarray, request: Request) -> np.ndarray:
    """Fit every frame to the request's size the way an image is fitted."""
    fitted = [
        np.asarray(
            fit_image(Image.fromarray(frame), request.width, request.height, request.fit, request.background)
        )
        for frame in frames
    ]
    return np.stack(fitted)


def describe_file(path: Path) -> dict[str, str]:
    """File name and SHA-256 (of the file, or of a folder's files in name order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return {"name": path.name, "sha256": digest.hexdigest()}


def with_video_length(request: Request, max_frames: int) -> Request:
    """A video request without num_frames takes all of the clip's frames."""
    if not request.video or request.num_frames is not None:
        return request
    count = video_length(request.video)
    if count > max_frames:
        raise FieldError(
            "num_frames",
            None,
            f"the video has {count} frames, more than the model's {max_frames}; pass --num-frames",
        )
    return request.model_copy(update={"num_frames": count})
