"""What a metric reports, and the table of every metric videogen computes.

A metric either has a value or was skipped with a reason (its encoder is missing, the video is
too short, the run had no input image). A skipped metric is never reported as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Group = Literal["pixels", "flow", "learned"]


@dataclass(frozen=True)
class MetricInfo:
    """How to read one metric: its label, unit, direction and the range the radar chart maps to [0, 1]."""

    name: str
    label: str
    group: Group
    description: str
    #: True when larger is better, False when smaller is, None for descriptive quantities
    higher_is_better: bool | None = True
    #: (low, high) mapped to 0 and 1 on the radar chart; None keeps the metric off the radar
    scale: tuple[float, float] | None = (0.0, 1.0)
    unit: str = ""


# Radar ranges: VBench's NORMALIZE_DIC (scripts/constant.py) where the formula is VBench's; ours
# otherwise, each stated in the description.
METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo(
            "temporal_flickering",
            "Temporal flickering",
            "pixels",
            "VBench: (255 - mean absolute difference of consecutive uint8 frames) / 255; 1 = no change.",
            scale=(0.6293, 1.0),
        ),
        MetricInfo(
            "motion_smoothness",
            "Motion smoothness (flow proxy)",
            "flow",
            "1 - |flow acceleration along the motion| / (|flow t| + |flow t+1| + 0.5 px), over all "
            "pixels and frame triples; 1 = constant velocity. Not VBench's AMT-based score.",
        ),
        MetricInfo(
            "dynamic_degree",
            "Dynamic degree",
            "flow",
            "VBench rule on OpenCV Farneback flow (VBench uses RAFT): 1 when enough frame pairs have a "
            "top-5% flow magnitude above 6 px x min(h, w) / 256, else 0; the model mean is the share "
            "of dynamic videos.",
        ),
        MetricInfo(
            "flow_magnitude",
            "Flow magnitude (top 5%)",
            "flow",
            "Mean over consecutive frame pairs of the mean of the top 5% optical-flow magnitudes.",
            higher_is_better=None,
            scale=None,
            unit="px/frame",
        ),
        MetricInfo(
            "frame_ssim",
            "Frame-to-frame SSIM",
            "pixels",
            "Mean SSIM (Gaussian 11x11, sigma 1.5, per RGB channel) of consecutive frames.",
        ),
        MetricInfo(
            "first_frame_ssim",
            "First frame SSIM to input",
            "pixels",
            "SSIM of frame 0 to the input image (fitted to the frame size); image-conditioned runs only.",
        ),
        MetricInfo(
            "first_frame_psnr",
            "First frame PSNR to input",
            "pixels",
            "PSNR of frame 0 to the input image, capped at 100 dB; radar range 0-50 dB.",
            scale=(0.0, 50.0),
            unit="dB",
        ),
        MetricInfo(
            "subject_consistency",
            "Subject consistency (DINO)",
            "learned",
            "VBench: mean over frames i > 1 of (cos(f_i, f_i-1) + cos(f_i, f_1)) / 2, each clipped at "
            "0, on DINO ViT-B/16 [CLS] features.",
            scale=(0.1462, 1.0),
        ),
        MetricInfo(
            "background_consistency",
            "Background consistency (CLIP)",
            "learned",
            "The subject-consistency formula on CLIP image embeddings.",
            scale=(0.2615, 1.0),
        ),
        MetricInfo(
            "clip_text_alignment",
            "CLIPSIM (text alignment)",
            "learned",
            "Mean over frames of the cosine similarity of CLIP text and image embeddings; radar range "
            "0-0.4 (good text-to-video models score about 0.3).",
            scale=(0.0, 0.4),
        ),
        MetricInfo(
            "clip_image_similarity",
            "CLIP similarity to input",
            "learned",
            "Mean over frames of the cosine similarity of CLIP embeddings of the frame and the input "
            "image; image-conditioned runs only.",
        ),
        MetricInfo(
            "aesthetic_quality",
            "Aesthetic quality (LAION)",
            "learned",
            "VBench: LAION aesthetic predictor (linear head on normalised CLIP ViT-L/14 image "
            "embeddings) / 10, mean over frames.",
        ),
    )
}


@dataclass
class MetricResult:
    """One metric of one video: a value, or the reason it was skipped; ``details`` holds the workings."""

    name: str
    value: float | None = None
    skipped: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"value": self.value, "skipped": self.skipped}
        if self.details:
            data["details"] = self.details
        return data

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> MetricResult:
        return cls(name, data.get("value"), data.get("skipped"), data.get("details") or {})


def measured(name: str, value: float, **details: Any) -> MetricResult:
    """A metric with a value (stored as a plain float so it serialises to JSON)."""
    return MetricResult(name, float(value), None, details)


def skipped(name: str, reason: str) -> MetricResult:
    """A metric that could not be computed, and why."""
    return MetricResult(name, None, reason)
