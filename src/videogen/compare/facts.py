"""What a record keeps from a generation's sidecar: settings, seed, speed and memory."""

from __future__ import annotations

from typing import Any

GENERATION_STAGES = ("encode_s", "denoise_s", "decode_s")


def run_facts(sidecar: dict[str, Any], timings: dict[str, float] | None = None) -> dict[str, Any]:
    """The parts of a sidecar the report shows, plus derived speed figures.

    ``video_s`` is the time to make the video without loading the model or writing files
    (encode + denoise + decode), so the first video of a model is not charged for the load;
    ``s_per_step`` is the denoising time over the denoising steps actually run.
    """
    request = sidecar.get("request") or {}
    timings = dict(timings if timings is not None else sidecar.get("timings") or {})
    steps = (sidecar.get("record") or {}).get("denoising_steps") or request.get("steps")
    if all(stage in timings for stage in GENERATION_STAGES):
        timings["video_s"] = sum(timings[stage] for stage in GENERATION_STAGES)
    if steps and "denoise_s" in timings:
        timings["s_per_step"] = timings["denoise_s"] / steps
    return {
        "prompt": request.get("prompt"),
        "request": request,
        "steps": steps,
        "timings": timings,
        "peak_memory_mb": sidecar.get("peak_memory_mb") or {},
        "device": sidecar.get("device"),
        "device_name": sidecar.get("device_name"),
        "dtype": sidecar.get("dtype"),
        "fps": sidecar.get("fps"),
        "libraries": sidecar.get("libraries") or {},
        "videogen_version": sidecar.get("videogen_version"),
    }
