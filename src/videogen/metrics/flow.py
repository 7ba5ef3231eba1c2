"""Weights-free motion metrics from dense optical flow: flow magnitude, dynamic degree, smoothness.

VBench measures motion with RAFT; its weights come from a Dropbox archive, not the Hub, so here
the flow is OpenCV's Farneback (pyramid levels chosen so the coarsest level is at least 16 px,
window 15, 7-pixel polynomial neighbourhood). On textured content it recovers translations of
1-24 px to within a few percent (a little more at 64 px frames); on large flat regions it
underestimates, as every local method does, where RAFT fills in.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from videogen.metrics.results import MetricResult, measured, skipped

TOP_SHARE = 0.05
"""VBench scores a frame pair by the mean of its largest 5% flow magnitudes."""
FLOW_NOISE_PX = 0.5
"""Per-pixel floor in the smoothness denominator, so sub-pixel flow noise on a static video does
not read as jerky motion."""
VBENCH_FPS = 8.0
"""VBench samples videos to about 8 fps before measuring dynamic degree."""


def optical_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Dense flow (H, W, 2) in pixels from one grayscale uint8 frame to the next."""
    levels = max(1, int(math.log2(max(min(first.shape), 32) / 16)))
    return cv2.calcOpticalFlowFarneback(
        first, second, None, pyr_scale=0.5, levels=levels, winsize=15, iterations=3, poly_n=7,
        poly_sigma=1.5, flags=0,
    )  # fmt: skip


def frame_flows(frames: np.ndarray) -> list[np.ndarray]:
    """Flow between each pair of consecutive RGB uint8 frames."""
    gray = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    return [optical_flow(a, b) for a, b in zip(gray[:-1], gray[1:], strict=True)]


def top_magnitude(flow: np.ndarray, share: float = TOP_SHARE) -> float:
    """Mean of the largest ``share`` of the flow's per-pixel magnitudes (VBench's per-pair score)."""
    magnitudes = np.linalg.norm(flow, axis=2).ravel()
    count = max(1, int(magnitudes.size * share))
    return float(np.mean(np.partition(magnitudes, -count)[-count:]))


def flow_metrics(frames: np.ndarray, fps: float) -> list[MetricResult]:
    """flow_magnitude, dynamic_degree and motion_smoothness of uint8 RGB frames."""
    if len(frames) < 2:
        reason = "needs at least 2 frames"
        return [skipped(name, reason) for name in ("flow_magnitude", "dynamic_degree", "motion_smoothness")]
    flows = frame_flows(frames)
    tops = [top_magnitude(flow) for flow in flows]
    magnitude = measured(
        "flow_magnitude",
        np.mean(tops),
        per_pair=[round(value, 4) for value in tops],
        mean_all_pixels=round(float(np.mean([np.linalg.norm(f, axis=2).mean() for f in flows])), 4),
    )
    return [magnitude, dynamic_degree(frames, fps, flows), motion_smoothness(flows)]


def dynamic_degree(frames: np.ndarray, fps: float, flows: list[np.ndarray]) -> MetricResult:
    """VBench's dynamic degree: 1.0 if the video moves, else 0.0.

    Frames are first thinned to about 8 fps (every round(fps / 8)-th frame). A pair moves when
    its top-5% flow magnitude exceeds 6 px x min(h, w) / 256; the video is dynamic when at least
    round(4 x frames / 16) pairs move. VBench's count can round to 0 for very short clips, which
    would call any clip dynamic; here at least one pair must move.
    """
    interval = max(1, round(fps / VBENCH_FPS))
    sampled = frames[::interval]
    if len(sampled) < 2:
        return skipped("dynamic_degree", f"fewer than 2 frames left after sampling every {interval}th frame")
    pair_flows = flows if interval == 1 else frame_flows(sampled)
    scores = [top_magnitude(flow) for flow in pair_flows]
    height, width = frames.shape[1:3]
    threshold = 6.0 * min(height, width) / 256.0
    needed = max(1, round(4 * len(sampled) / 16))
    moving = sum(score > threshold for score in scores)
    return measured(
        "dynamic_degree",
        1.0 if moving >= needed else 0.0,
        threshold_px=round(threshold, 4),
        pairs_needed=needed,
        pairs_moving=moving,
        frame_interval=interval,
    )


def motion_smoothness(flows: list[np.ndarray]) -> MetricResult:
    """Flow-based stand-in for VBench's motion smoothness (which needs the AMT interpolation model).

    For each pixel p and consecutive flows F_t, F_t+1, the acceleration along the motion is
    a = F_t+1(p + F_t(p)) - F_t(p). The score is 1 - sum|a| / sum(|F_t| + |F_t+1(p + F_t(p))| + 0.5),
    summed over pixels and frame triples. The triangle inequality keeps it in [0, 1]: constant
    velocity (or no motion) gives 1, motion that reverses every frame approaches 0.
    """
    if len(flows) < 2:
        return skipped("motion_smoothness", "needs at least 3 frames")
    height, width = flows[0].shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    acceleration = denominator = 0.0
    for now, after in zip(flows[:-1], flows[1:], strict=True):
        after_along = cv2.remap(
            after,
            grid_x + now[..., 0],
            grid_y + now[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        acceleration += float(np.linalg.norm(after_along - now, axis=2).sum())
        speeds = np.linalg.norm(now, axis=2).sum() + np.linalg.norm(after_along, axis=2).sum()
        denominator += float(speeds) + FLOW_NOISE_PX * height * width
    pixels = height * width * (len(flows) - 1)
    return measured(
        "motion_smoothness",
        1.0 - acceleration / denominator,
        mean_acceleration_px=round(acceleration / pixels, 5),
    )
