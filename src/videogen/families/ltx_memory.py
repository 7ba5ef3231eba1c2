"""LTX-Video's VAE decode sized to the free memory: whole clips where they fit, tiles where not.

AutoencoderKLLTXVideo decodes a clip in one pass, every frame at once (its decoder is not causal in
time), so its peak grows with frames x height x width. diffusers' tiling cuts that two ways: spatial
tiles (``enable_tiling``: overlapping squares, blended) and, with ``use_framewise_decoding``, runs of
latent frames (overlapping, blended in time). Tiled frames differ slightly from whole-clip ones at
the seams, so the whole clip is decoded when its estimate fits in a share of the free memory
(``decoding.MEMORY_SHARE``), else the largest tiles that fit; an out-of-memory error still retries
with the next smaller tiles. The record says which (``vae_tiling``).

The generic parts come from ``wan_memory`` (``Tiling``, ``decode_budget``) and ``decoding``
(``with_fallbacks``, the retry loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
from diffusers import AutoencoderKLLTXVideo

from videogen.families.decoding import from_first_fitting, with_fallbacks
from videogen.families.wan_memory import Tiling, decode_budget

#: Peak bytes of a whole-clip fp32 decode per output pixel-frame, and a fixed part, measured on the
#: full-size LTX-Video 0.9.0 VAE architecture (random weights) on the CPU: peak resident memory above
#: the loaded model, glibc returning freed blocks at once (MALLOC_MMAP_THRESHOLD_=131072). 52 MiB at
#: 9 frames of 128x128, 69 MiB at 17, 110 MiB at 33, 131 MiB at 9 frames of 256x256: 164-187 B per
#: pixel-frame (its 4x pixel patch keeps the widest activations at a sixteenth of the pixels) and
#: about 25 MiB fixed; rounded up. The 0.9.5 VAE (wider, residual upsamplers) is not measured yet.
PER_PIXEL_FRAME = 240
FIXED = 64 * 2**20
#: tiled: the decoded clip (3 channels, fp32) held a few times over while the tiles are blended
OUTPUT_PER_PIXEL_FRAME = 60
#: (tile, stride) in pixels, largest first (512 / 448 is diffusers' default), and the latent frames
#: of a temporal tile: ``frames`` pixel frames a tile, ``frame_stride`` apart
TILES = ((512, 448), (256, 192))
FRAMES, FRAME_STRIDE = 16, 8


@dataclass(frozen=True)
class ClipTiling(Tiling):
    """Spatial tiles plus runs of ``frames`` pixel frames, ``frame_stride`` apart."""

    frames: int = FRAMES
    frame_stride: int = FRAME_STRIDE

    def record(self) -> dict[str, int]:
        return {**super().record(), "frames": self.frames, "frame_stride": self.frame_stride}


def output_size(vae: AutoencoderKLLTXVideo, latents_shape: Sequence[int]) -> tuple[int, int, int]:
    """(frames, height, width) the VAE decodes latents of shape (1, c, f, h, w) to."""
    _, _, frames, height, width = latents_shape
    spatial = vae.spatial_compression_ratio
    return (frames - 1) * vae.temporal_compression_ratio + 1, height * spatial, width * spatial


def decode_bytes(
    vae: AutoencoderKLLTXVideo, frames: int, height: int, width: int, tiling: ClipTiling | None
) -> int:
    """Estimated peak bytes of decoding ``frames`` frames of ``height`` x ``width`` in the VAE's dtype."""
    scale = torch.finfo(vae.dtype).bits / 32
    output = OUTPUT_PER_PIXEL_FRAME * frames * height * width
    if tiling is None:  # the measurement includes the output
        return int(FIXED + PER_PIXEL_FRAME * frames * height * width * scale)
    # a temporal tile spans its frames plus one latent frame of overlap
    tile_frames = min(frames, tiling.frames + vae.temporal_compression_ratio)
    area = min(tiling.size, height) * min(tiling.size, width)
    return int(FIXED + (PER_PIXEL_FRAME * tile_frames * area + output) * scale)


def plan_tilings(
    vae: AutoencoderKLLTXVideo, latents_shape: Sequence[int], budget: int | None
) -> list[ClipTiling | None]:
    """The decodes to try in order: the first whose estimate fits in ``budget`` (None: the whole
    clip), then every smaller option as fallbacks for an out-of-memory error. Unknown budget: whole first."""
    frames, height, width = output_size(vae, latents_shape)
    options: list[ClipTiling | None] = [None, *(ClipTiling(size, stride) for size, stride in TILES)]
    return from_first_fitting(options, partial(decode_bytes, vae, frames, height, width), budget)


def decode_latents(
    vae: AutoencoderKLLTXVideo, latents: torch.Tensor, timestep: torch.Tensor | None
) -> tuple[torch.Tensor, ClipTiling | None]:
    """Decode VAE latents (1, c, f, h, w) (at ``timestep`` for a timestep-conditioned decoder) to pixels
    (1, 3, F, H, W), tiled only where the whole clip would not fit; also the tiling used."""
    tilings = plan_tilings(vae, latents.shape, decode_budget(latents.device))
    return with_fallbacks(tilings, lambda tiling: _decode(vae, latents, timestep, tiling))


def _decode(
    vae: AutoencoderKLLTXVideo,
    latents: torch.Tensor,
    timestep: torch.Tensor | None,
    tiling: ClipTiling | None,
) -> torch.Tensor:
    if tiling is None:
        return vae.decode(latents, timestep, return_dict=False)[0]
    vae.enable_tiling(
        tile_sample_min_height=tiling.size,
        tile_sample_min_width=tiling.size,
        tile_sample_stride_height=tiling.stride,
        tile_sample_stride_width=tiling.stride,
        tile_sample_min_num_frames=tiling.frames,
        tile_sample_stride_num_frames=tiling.frame_stride,
    )
    vae.use_framewise_decoding = True
    try:
        return vae.decode(latents, timestep, return_dict=False)[0]
    finally:
        vae.disable_tiling()  # encoding (keyframes and clips) stays untiled
        vae.use_framewise_decoding = False
