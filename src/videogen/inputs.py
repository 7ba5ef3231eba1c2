"""Conditioning inputs: read the request's image or video, fit it to the request's size, record it.

A video is probed from its metadata first (``resolve.with_video_facts``, at submit and before a run)
and then only its sampled frames are decoded, each fitted to the request's size as it is decoded.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from videogen.catalog import ModelSpec
from videogen.errors import FieldError, UserError
from videogen.families.base import Inputs, Keyframe
from videogen.media.frames import IMAGE_SUFFIXES, iter_frames, probe_video, sample_indices
from videogen.media.images import fit_image, load_image
from videogen.media.prepare import prepare_object_image
from videogen.request import Request, split_keyframe


def load_inputs(request: Request, spec: ModelSpec) -> tuple[Inputs, dict[str, object]]:
    """Decoded, fitted inputs for a resolved request, and a record of the files (name, SHA-256;
    a video's frame count, size and rate too).

    Orbit models (SV3D) get the object centred on white instead of a plain fit. With keyframes
    (LTX-Video), an image is the keyframe at frame 0.
    """
    inputs, record = _image_or_video(request, spec)
    if not request.keyframe:
        return inputs, record
    keyframes, described = zip(*(load_keyframe(entry, request) for entry in request.keyframe), strict=True)
    first = [] if inputs.image is None else [Keyframe(frames=np.asarray(inputs.image)[None], frame_index=0)]
    with_keyframes = replace(inputs, image=None, keyframes=[*first, *keyframes])
    return with_keyframes, {**record, "keyframe": list(described)}


def load_keyframe(entry: str, request: Request) -> tuple[Keyframe, dict[str, object]]:
    """One ``keyframe`` entry (FILE@FRAME[:STRENGTH]) read and fitted: an image is one frame, a clip
    (a video file or a folder of frames) gives its frames from the start, as many as fit before the
    video ends."""
    source, frame_index, strength = split_keyframe(entry)
    path = Path(source)
    if not path.exists():
        raise FieldError("keyframe", entry, f"no such file or folder: {source}")
    described: dict[str, object] = {**describe_file(path), "frame": frame_index, "strength": strength}
    if path.is_dir() or path.suffix.lower() not in IMAGE_SUFFIXES:
        info = probe_video(path, request.max_input_pixels)
        count = min(info.frames, request.num_frames - frame_index)
        fitted = [
            np.asarray(fit_image(frame, request.width, request.height, request.fit, request.background))
            for _, frame in iter_frames(path, list(range(count)), request.max_input_pixels)
        ]
        if len(fitted) < count:
            raise UserError(f"keyframe: {path.name!r} has fewer frames that decode than its container states")
        frames = np.stack(fitted)
        described["frames"] = count
    else:
        image = load_image(path, request.max_input_pixels, field="keyframe")
        fitted = fit_image(image, request.width, request.height, request.fit, request.background)
        frames = np.asarray(fitted)[None]
    return Keyframe(frames=frames, frame_index=frame_index, strength=strength), described


def _image_or_video(request: Request, spec: ModelSpec) -> tuple[Inputs, dict[str, object]]:
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
