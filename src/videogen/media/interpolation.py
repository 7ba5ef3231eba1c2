"""Frame interpolation by motion compensation, with no learned weights.

Between two frames A and B, dense optical flow (OpenCV's Farneback, on grayscale) is measured
both ways. For an in-between time t, each pixel of the new frame is fetched from A where the
flow says it was at time 0 and from B where it will be at time 1, and the two are blended
with weights 1-t and t. A moving object therefore lands at its in-between position; a plain
cross-fade would show it twice, half bright, at both ends.

Everything streams: two input frames (and their flow) are held at a time, so a clip of any
length is interpolated in the memory of a few frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from videogen.errors import FieldError, UserError
from videogen.media.frames import FOLDER_FPS, iter_frames, probe_video
from videogen.media.streaming import Mp4Stream

MAX_FACTOR = 8

# Farneback settings: a 21-pixel window with the larger polynomial neighbourhood (7, sigma 1.5)
# tracks flat-coloured objects moving up to about their own size, where OpenCV's usual
# 15-pixel window and (5, 1.2) under-estimate the motion of their insides.
_FARNEBACK = {
    "pyr_scale": 0.5,
    "levels": 5,
    "winsize": 21,
    "iterations": 5,
    "poly_n": 7,
    "poly_sigma": 1.5,
    "flags": cv2.OPTFLOW_FARNEBACK_GAUSSIAN,
}

_INVERSION_STEPS = 3
"""Fixed-point steps that turn flow measured at the source frame into flow at the new frame."""


def interpolate_frames(frames: Iterable[np.ndarray], factor: int) -> Iterator[np.ndarray]:
    """Yield each frame followed by ``factor - 1`` motion-compensated in-between frames.

    The last frame is followed by none, so n frames give (n - 1) * factor + 1. Frames are uint8
    RGB arrays of shape (H, W, 3), all the same size. ``factor`` 1 yields the frames unchanged.
    The factor is checked at the call, not when iteration starts.
    """
    check_settings(factor)
    return _interpolated(iter(frames), factor)


def interpolate_video(
    source: Path,
    factor: int,
    target: Path,
    fps: float | None = None,
    metadata: dict[str, str] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> tuple[int, float]:
    """Interpolate a video file (or folder of frames) into an mp4 at ``target``.

    ``fps`` defaults to the source's rate times ``factor``, so the clip keeps its duration.
    ``on_frame(written, expected)`` is called after each frame written; ``expected`` comes from
    the container's frame count, which some containers only estimate. Returns (frames written,
    fps). The source is decoded and the output encoded one frame at a time.
    """
    check_settings(factor, fps)
    info = probe_video(source)
    rate = float(fps) if fps is not None else (info.fps or FOLDER_FPS) * factor
    expected = (info.frames - 1) * factor + 1
    decoded = (np.asarray(image) for _, image in iter_frames(source))
    with Mp4Stream(target, rate, metadata) as stream:
        for frame in interpolate_frames(decoded, factor):
            stream.write(frame)
            if on_frame is not None:
                on_frame(stream.frames, expected)
    return stream.frames, rate


def check_settings(factor: int, fps: float | None = None) -> None:
    """Raise the FieldError (``interpolate`` or ``fps``) for a value that is not allowed."""
    if isinstance(factor, bool) or not isinstance(factor, int) or not 1 <= factor <= MAX_FACTOR:
        raise FieldError(
            "interpolate",
            factor,
            f"allowed factors are whole numbers 2 to {MAX_FACTOR} (frames per input frame), or 1 for none",
        )
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise FieldError("fps", fps, "give a positive number of frames per second")


def _interpolated(frames: Iterator[np.ndarray], factor: int) -> Iterator[np.ndarray]:
    previous = next(frames, None)
    if previous is None:
        return
    _check_frame(0, previous)
    times = [k / factor for k in range(1, factor)]
    grid = _pixel_grid(*previous.shape[:2]) if times else None
    for index, current in enumerate(frames, start=1):
        _check_frame(index, current, previous.shape)
        yield previous
        if grid is not None:
            yield from _between(previous, current, times, grid)
        previous = current
    yield previous


def _check_frame(index: int, frame: np.ndarray, shape: tuple[int, ...] | None = None) -> None:
    """Frames must be uint8 RGB, all of the first one's ``shape`` (a folder's images may not be)."""
    if not (
        isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    ):
        got = f"{getattr(frame, 'dtype', type(frame).__name__)} {getattr(frame, 'shape', '')}"
        raise ValueError(f"frame {index}: expected uint8 RGB of shape (H, W, 3), got {got}")
    if shape is not None and frame.shape != shape:
        raise UserError(
            f"interpolate: frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
            f"the first frame is {shape[1]}x{shape[0]}"
        )


def _between(a: np.ndarray, b: np.ndarray, times: list[float], grid: np.ndarray) -> Iterator[np.ndarray]:
    """Frames at each of ``times`` (0 < t < 1) between ``a`` (t = 0) and ``b`` (t = 1)."""
    gray_a, gray_b = (cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in (a, b))
    flow_ab = cv2.calcOpticalFlowFarneback(gray_a, gray_b, None, **_FARNEBACK)
    flow_ba = cv2.calcOpticalFlowFarneback(gray_b, gray_a, None, **_FARNEBACK)
    for t in times:
        from_a = _warp(a, _source_points(flow_ab, t, grid))
        from_b = _warp(b, _source_points(flow_ba, 1 - t, grid))
        yield cv2.addWeighted(from_a, 1 - t, from_b, t, 0)


def _source_points(flow: np.ndarray, t: float, grid: np.ndarray) -> np.ndarray:
    """For each pixel x of the frame at time t, the point p of the source frame that moves to it.

    ``flow`` is measured at the source's pixels, so p solves p + t * flow(p) = x; a few
    fixed-point steps find it. Using the flow at x itself (p = x - t * flow(x)) misses where an
    object has moved off the pixels it covered in the source frame.
    """
    points = flow * -t
    points += grid  # in place, here and below: at full HD each of these fields is 16 MB
    for _ in range(_INVERSION_STEPS):
        points = _warp(flow, points)
        points *= -t
        points += grid
    return points


def _warp(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``image`` sampled (bilinearly, edges repeated) at ``points`` of shape (H, W, 2)."""
    return cv2.remap(image, points, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _pixel_grid(height: int, width: int) -> np.ndarray:
    """(x, y) of every pixel, shape (H, W, 2), float32 as ``cv2.remap`` takes."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.dstack([xs, ys])
