"""Sampling presets, and what each costs in UNet evaluations.

``quality`` is the model's reference settings (the catalog defaults). ``balanced`` and ``fast`` trade
some fidelity for time with fewer steps, a multistep scheduler (UNet3D family), DeepCache feature
reuse and, for ``fast``, classifier-free guidance on the first half of the steps only. Wan models
(diffusion transformers) take fewer steps and diffusers' First Block Cache (``cache_threshold``): how
many transformer calls it shortens depends on the video, so the record counts them. LTX-Video's
presets only cache: its step counts are already low, and a distilled model's schedule is fixed. Fields given
explicitly override the preset's values.
"""

from __future__ import annotations

from typing import Any

from videogen.sampling.guidance import guided_steps

#: preset -> family -> request fields it sets
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "quality": {"unet3d": {}, "svd": {}, "wan": {}, "ltx": {}},
    "balanced": {
        "unet3d": {"scheduler": "dpm++", "steps": 25, "cache_interval": 2},
        "svd": {"steps": 20, "cache_interval": 2},
        "wan": {"steps": 30, "cache_threshold": 0.05},
        "ltx": {"cache_threshold": 0.05},
    },
    "fast": {
        "unet3d": {"scheduler": "dpm++", "steps": 20, "cache_interval": 3, "guidance_end": 0.5},
        "svd": {"steps": 12, "cache_interval": 3, "guidance_end": 0.5},
        "wan": {"steps": 20, "cache_threshold": 0.1},
        "ltx": {"cache_threshold": 0.1},
    },
}


def preset_fields(preset: str | None, family: str) -> dict[str, Any]:
    """The request fields ``preset`` sets for a model of ``family`` (nothing for no preset)."""
    return {} if preset is None else dict(PRESETS[preset][family])


def unet_evaluations(steps: int, guided: bool, guidance_end: float = 1.0, cache_interval: int = 1) -> dict:
    """UNet evaluations (one per batch item, so a guided step costs two) of a sampling setting.

    ``full`` runs the whole UNet, ``shallow`` only DeepCache's shallow path (step i is full when
    i % cache_interval == 0). ``total`` counts both; it is the figure the presets are judged by.
    """
    with_guidance = guided_steps(steps, guidance_end) if guided else 0
    full = shallow = 0
    for step in range(steps):
        batch = 2 if step < with_guidance else 1
        if step % cache_interval == 0:
            full += batch
        else:
            shallow += batch
    return {"full": full, "shallow": shallow, "total": full + shallow}
