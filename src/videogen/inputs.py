"""Conditioning inputs: read the request's image or video, fit it to the request's size, record it.

A video is probed from its metadata first (``resolve.with_video_facts``, at submit and before a run)
and then only its sampled frames are decoded, each fitted to the request's size as it is decoded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from videogen.catalog import ModelSpec
from videogen.errors import UserError
from videogen.families.base import Inputs
from videogen.media.frames import iter_frames, probe_video, sample_indices
from videogen.media.images import fit_image, load_image
from videogen.media.prepare import prepare_object_image
from videogen.request import Request


def load_inputs(request: Request, spec: ModelSpec) -> tuple[Inputs, dict[str, dict[str, object]]]:
    """Decoded, fitted inputs for a resolved request, and a record of the files (name, SHA-256;
    a video's frame count, size and rate too).

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
        if not request.last_image:
            return Inputs(image=fitted), {"image": describe_file(path)}
        last_path = Path(request.last_image)
        last = load_image(last_path, request.max_input_pixels, field="last_image")
        last_fitted = fit_image(last, request.width, request.height, request.fit, request.background)
        record = {"image": describe_file(path), "last_image": describe_file(last_path)}
        return Inputs(image=fitted, last_image=last_fitted), record
    if request.video:
        path = Path(request.video)
        info = probe_video(path, request.max_input_pixels)
        frames = sample_video(path, info.frames, request)
        record = {**describe_file(path), "frames": info.frames, "width": info.width, "height": info.height}
        return Inputs(video=frames), {"video": {**record, "fps": info.fps}}
    return Inputs(), {}


def sample_video(path: Path, length: int, request: Request) -> np.ndarray:
    """The request's ``num_frames`` frames spread evenly over a clip of ``length`` frames, fitted.

    Each sampled frame is fitted as soon as it is decoded, so only one full-size frame is held.
    """
    indices = sample_indices(length, request.num_frames)
    fitted: dict[int, np.ndarray] = {}
    for index, frame in iter_frames(path, sorted(set(indices)), request.max_input_pixels):
        image = fit_image(frame, request.width, request.height, request.fit, request.background)
        fitted[index] = np.asarray(image)
        del frame  # else the loop variable keeps this full-size frame while the next one decodes
    if len(fitted) < len(set(indices)):
        raise UserError(
            f"video: {path.name!r} has fewer frames that decode than the {length} its container states"
        )
    return np.stack([fitted[index] for index in indices])


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
