"""Tiny random-weight models in the diffusers layout, for the test suite and ``videogen selftest``.

Each builder writes a complete pipeline folder (model_index.json plus one subfolder per
component, weights as safetensors) that loads with the matching diffusers pipeline class and with
our own loaders (SV3D, which diffusers lacks, reuses the SVD layout; see ``_sv3d``). Nothing is
downloaded: even the CLIP tokenizer is generated. The architectures keep the real models' structure
(block types, 8x VAE, conditioning inputs, scheduler configs) at a few million parameters, so a
2-step 64x64 generation takes well under a second on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from ._ltx import build_tiny_ltx, build_tiny_ltx095
from ._sv3d import build_tiny_sv3d
from ._svd import build_tiny_svd
from ._tokenizer import write_tiny_clip_tokenizer
from ._unet3d import build_tiny_unet3d
from ._wan import build_tiny_wan_a14b, build_tiny_wan_t2v, build_tiny_wan_ti2v
from ._wan_i2v import build_tiny_wan_a14b_i2v, build_tiny_wan_flf2v, build_tiny_wan_i2v

__all__ = [
    "TINY_BUILDERS",
    "build_tiny_model",
    "build_tiny_sv3d",
    "build_tiny_svd",
    "build_tiny_unet3d",
    "write_tiny_clip_tokenizer",
]

TINY_BUILDERS: dict[str, Callable[[Path, int], Path]] = {
    "unet3d": build_tiny_unet3d,
    "svd": build_tiny_svd,
    "sv3d-u": partial(build_tiny_sv3d, conditioning="u"),
    "sv3d-p": partial(build_tiny_sv3d, conditioning="p"),
    "wan-t2v": build_tiny_wan_t2v,
    "wan-ti2v": build_tiny_wan_ti2v,
    "wan-a14b": build_tiny_wan_a14b,
    "wan-i2v": build_tiny_wan_i2v,
    "wan-flf2v": build_tiny_wan_flf2v,
    "wan-a14b-i2v": build_tiny_wan_a14b_i2v,
    "ltx": build_tiny_ltx,
    "ltx-095": build_tiny_ltx095,
}


def build_tiny_model(family: str, folder: Path, seed: int = 0) -> Path:
    """Write the tiny model ``family`` ("unet3d", "svd", "sv3d-u" or "sv3d-p") into ``folder``; return it."""
    try:
        builder = TINY_BUILDERS[family]
    except KeyError:
        known = ", ".join(sorted(TINY_BUILDERS))
        raise ValueError(f"family: {family!r} has no tiny model; known families: {known}") from None
    return builder(Path(folder), seed)
