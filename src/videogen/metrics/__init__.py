"""Per-video quality metrics: VBench's formulas where they exist, weights-free ones always on.

``Evaluator(EncoderSources(...)).evaluate(frames, fps, prompt, image)`` returns one
``MetricResult`` per entry of ``METRICS``: a value, or the reason it was skipped (never a zero
standing in for "missing"). Names are imported on first use, so importing the package (as the
command line does) does not load torch.
"""

from __future__ import annotations

from videogen.lazy import lazy_getattr

_EXPORTS = {
    "METRICS": "results",
    "MetricInfo": "results",
    "MetricResult": "results",
    "EncoderSources": "sources",
    "CLIP_REPO": "sources",
    "DINO_REPO": "sources",
    "AESTHETIC_CLIP_REPO": "sources",
    "AESTHETIC_HEAD_ENV": "sources",
    "EncoderUnavailable": "encoders",
    "Evaluator": "evaluate",
    "LEARNED": "evaluate",
    "consistency": "embeddings",
    "temporal_flickering": "pixels",
    "frame_ssim": "pixels",
    "input_fidelity": "pixels",
    "ssim": "pixels",
    "psnr": "pixels",
    "flow_metrics": "flow",
    "optical_flow": "flow",
    "top_magnitude": "flow",
    "dynamic_degree": "flow",
    "motion_smoothness": "flow",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
