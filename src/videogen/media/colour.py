"""Colour transfer between video segments, so that a long video's colours do not drift.

Each segment of a chained video is generated from the last frames of the one before, and small
shifts of hue and brightness add up from segment to segment. ``match_colours`` moves a segment's
colours onto the previous segment's over the frames they share: in CIE Lab (perceptual: lightness
apart from the two colour axes), each channel's mean and spread over the shared frames of the new
segment are mapped to those of the old one (Reinhard et al.'s colour transfer, on statistics).
"""

from __future__ import annotations

import cv2
import numpy as np

#: a channel's spread is scaled by at most this factor either way, so a flat overlap (a spread
#: near zero) cannot blow the colours up
MAX_SPREAD_RATIO = 2.0


def lab(frames: np.ndarray) -> np.ndarray:
    """Float RGB frames in [0, 1], (n, h, w, 3), as CIE Lab (L 0..100, a and b about -128..127)."""
    n, height, width, _ = frames.shape
    flat = np.ascontiguousarray(frames, dtype=np.float32).reshape(n * height, width, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(n, height, width, 3)


def rgb(frames_lab: np.ndarray) -> np.ndarray:
    """The inverse of ``lab``, clipped to [0, 1]."""
    n, height, width, _ = frames_lab.shape
    flat = np.ascontiguousarray(frames_lab, dtype=np.float32).reshape(n * height, width, 3)
    return np.clip(cv2.cvtColor(flat, cv2.COLOR_Lab2RGB).reshape(n, height, width, 3), 0.0, 1.0)


def colour_stats(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of ``frames`` in Lab, summed a frame at a time (in
    float64, which for all the shared frames at once would be several times a segment's size)."""
    total, squares, count = np.zeros(3), np.zeros(3), 0
    for index in range(len(frames)):
        values = lab(frames[index : index + 1]).reshape(-1, 3).astype(np.float64)
        total += values.sum(axis=0)
        squares += np.square(values).sum(axis=0)
        count += len(values)
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))


def match_colours(frames: np.ndarray, source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Apply to ``frames``, in place, the colour change that takes ``source``'s Lab statistics to
    ``reference``'s; returns ``frames``.

    ``source`` are frames of the same segment as ``frames`` (its shared frames), ``reference`` the
    previous segment's frames at the same moments. All float32 RGB in [0, 1]. In place, and a frame
    at a time, because a segment is the largest thing a chain holds: a copy would double it.
    """
    source_mean, source_std = colour_stats(source)
    reference_mean, reference_std = colour_stats(reference)
    ratio = np.clip(reference_std / np.maximum(source_std, 1e-6), 1 / MAX_SPREAD_RATIO, MAX_SPREAD_RATIO)
    scale = ratio.astype(np.float32)
    offset = (reference_mean - source_mean * ratio).astype(np.float32)
    for index in range(len(frames)):
        frames[index] = rgb(lab(frames[index : index + 1]) * scale + offset)[0]
    return frames
