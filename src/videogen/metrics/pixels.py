"""Weights-free metrics on pixels: temporal flickering, frame-to-frame SSIM, fidelity to the input image."""

from __future__ import annotations

import cv2
import numpy as np

from videogen.metrics.results import MetricResult, measured, skipped

PSNR_CAP_DB = 100.0
"""PSNR of identical images is infinite; it is reported as this cap so means stay finite."""

_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2
TOO_SHORT = "needs at least 2 frames"


def temporal_flickering(frames: np.ndarray) -> MetricResult:
    """VBench's temporal flickering: (255 - mean |frame t+1 - frame t|) / 255 over uint8 frames.

    VBench applies it to videos filtered to be static; here it runs on every video, so camera or
    object motion also lowers it.
    """
    if len(frames) < 2:
        return skipped("temporal_flickering", TOO_SHORT)
    diffs = [np.abs(b.astype(np.float32) - a.astype(np.float32)).mean() for a, b in _pairs(frames)]
    return measured("temporal_flickering", (255.0 - float(np.mean(diffs))) / 255.0)


def frame_ssim(frames: np.ndarray) -> MetricResult:
    """Mean SSIM of consecutive frames."""
    if len(frames) < 2:
        return skipped("frame_ssim", TOO_SHORT)
    values = [ssim(a, b) for a, b in _pairs(frames)]
    return measured("frame_ssim", np.mean(values), per_pair=[round(v, 6) for v in values])


def input_fidelity(frames: np.ndarray, image: np.ndarray | None) -> list[MetricResult]:
    """SSIM and PSNR of the first frame to the input image, resized to the frame size if needed."""
    if image is None:
        reason = "not image-conditioned (no input image)"
        return [skipped("first_frame_ssim", reason), skipped("first_frame_psnr", reason)]
    first = frames[0]
    height, width = first.shape[:2]
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return [
        measured("first_frame_ssim", ssim(first, image)),
        measured("first_frame_psnr", psnr(first, image)),
    ]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004: Gaussian window 11x11, sigma 1.5, K1 0.01, K2 0.03) of two uint8
    images, the mean of the per-channel SSIM maps."""
    x, y = a.astype(np.float64), b.astype(np.float64)

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _SSIM_C1) * (2 * cov + _SSIM_C2)
    denominator = (mu_x**2 + mu_y**2 + _SSIM_C1) * (var_x + var_y + _SSIM_C2)
    return float(np.mean(numerator / denominator))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB, capped at ``PSNR_CAP_DB``."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * np.log10(255.0**2 / mse))


def _pairs(frames: np.ndarray) -> zip:
    return zip(frames[:-1], frames[1:], strict=True)
