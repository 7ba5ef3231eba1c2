"""Memory measures of the Wan family: VAE tiling chosen from free memory, the text encoder kept on
the CPU, and fp8 weight storage.

Decoding. AutoencoderKLWan decodes a clip latent frame by latent frame (a causal feature cache
carries time), so its peak does not grow with the clip's length as a frame-batched decode does: it
is the activations of one latent frame's chunk (four output frames) at full resolution, plus the
decoded video as it grows. What grows with the frame size is the activations, and that is where
tiling helps: with ``enable_tiling`` the decoder runs on overlapping tiles and the activations are a
tile's. Tiled frames differ slightly from whole-frame ones at the tile seams (blended), so tiling
is used only when the whole-frame decode would not fit in a share of the free memory
(``decoding.MEMORY_SHARE``), with the largest tile that fits; an out-of-memory error still retries
with the next smaller tile. The record says which (``vae_tiling``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
from diffusers import AutoencoderKLWan
from torch import nn

from videogen.families.decoding import MEMORY_SHARE, from_first_fitting, with_fallbacks
from videogen.memory import free_memory
from videogen.speedups import Speedups, prepare_modules


@dataclass(frozen=True)
class DecodeCost:
    """Peak bytes of a Wan VAE decode in fp32: ``fixed``, plus ``per_pixel`` for each output pixel of
    the area decoded at once (the whole frame, or one tile), plus ``per_pixel_frame`` for each pixel
    of each output frame (the decoded video held while it grows)."""

    fixed: int
    per_pixel: int
    per_pixel_frame: int
    #: per pixel-frame when tiled: overlapping tiles are all kept until they are blended
    tiled_per_pixel_frame: int


#: ``per_pixel`` was measured on the full-size VAE architectures (random weights) on the CPU: peak
#: resident memory above the loaded model, fp32, glibc returning freed blocks at once
#: (MALLOC_MMAP_THRESHOLD_=131072). Wan 2.1: 131 MB at 1 frame of 128x128, 327 MB at 5, 343 MB at 9,
#: 731 MB at 5 frames of 192x192 (20 KB per pixel for a four-frame chunk, linear in the area); in
#: 128 px tiles, 5 frames of 256x256 peaked at 331 MB (a tile's activations). Wan 2.2: 343 MB at 5
#: frames of 128x128, 378 MB at 9 (21 KB per pixel). Rounded up. ``per_pixel_frame`` is counted from
#: the tensors the decode holds (the output, 12 B per pixel-frame in fp32, grown by concatenation so
#: held twice, then clamped and converted: five copies); the steps from 5 to 9 frames above (244 B
#: and 541 B per pixel-frame) are single pairs of points, not told apart from the allocator's noise:
#: to be checked on CUDA with max_memory_allocated. Tiled, the overlapping tiles ((256/192)^2 = 1.8
#: frames' worth) and the blended rows add to that. Keyed by the latent channels.
DECODE_COSTS = {
    16: DecodeCost(fixed=64 * 2**20, per_pixel=21_000, per_pixel_frame=60, tiled_per_pixel_frame=100),
    48: DecodeCost(fixed=64 * 2**20, per_pixel=22_000, per_pixel_frame=60, tiled_per_pixel_frame=100),
}
#: Tiles to try when the whole frame does not fit, largest first: (tile, stride) in output pixels.
#: 256 / 192 is diffusers' default; strides are multiples of 16 so Wan 2.2's 16x VAE tiles too.
TILES = ((256, 192), (128, 96))


@dataclass(frozen=True)
class Tiling:
    """Tiles of ``size`` pixels square, ``stride`` apart (they overlap by size - stride and are blended)."""

    size: int
    stride: int

    def record(self) -> dict[str, int]:
        return {"tile": self.size, "stride": self.stride}


def decode_cost(vae: AutoencoderKLWan) -> DecodeCost:
    """The measured cost of this VAE's architecture (the larger one for an unknown VAE)."""
    return DECODE_COSTS.get(vae.config.z_dim, max(DECODE_COSTS.values(), key=lambda cost: cost.per_pixel))


def decode_bytes(vae: AutoencoderKLWan, frames: int, height: int, width: int, tiling: Tiling | None) -> int:
    """Estimated peak bytes of decoding ``frames`` frames of ``height`` x ``width`` in the VAE's dtype."""
    cost = decode_cost(vae)
    scale = torch.finfo(vae.dtype).bits / 32
    if tiling is None:
        variable = cost.per_pixel * height * width + cost.per_pixel_frame * frames * height * width
    else:
        area = min(tiling.size, height) * min(tiling.size, width)
        variable = cost.per_pixel * area + cost.tiled_per_pixel_frame * frames * height * width
    return int(cost.fixed + variable * scale)


def output_size(vae: AutoencoderKLWan, latents_shape: Sequence[int]) -> tuple[int, int, int]:
    """(frames, height, width) the VAE decodes latents of shape (1, z, F', h, w) to."""
    config = vae.config
    _, _, latent_frames, height, width = latents_shape
    spatial = config.scale_factor_spatial
    return (latent_frames - 1) * config.scale_factor_temporal + 1, height * spatial, width * spatial


def plan_tilings(
    vae: AutoencoderKLWan, latents_shape: Sequence[int], budget: int | None
) -> list[Tiling | None]:
    """The decodes to try in order: the first whose estimate fits in ``budget`` bytes (None: whole
    frames), then every smaller tile as the fallbacks for an out-of-memory error. With an unknown
    budget, whole frames first."""
    frames, height, width = output_size(vae, latents_shape)
    options: list[Tiling | None] = [None, *(Tiling(size, stride) for size, stride in TILES)]
    # a tile as large as the frame decodes the frame whole
    options = [o for o in options if o is None or o.size < max(height, width)]
    return from_first_fitting(options, partial(decode_bytes, vae, frames, height, width), budget)


def decode_budget(device: torch.device) -> int | None:
    """The bytes a decode may plan to use on ``device`` (a share of the free memory), None if unknown."""
    if device.type == "cuda":
        torch.cuda.empty_cache()  # blocks the denoiser left in PyTorch's cache count as free
    free = free_memory(device)
    return None if free is None else int(free * MEMORY_SHARE)


def decode_fitting(
    vae: AutoencoderKLWan, latents: torch.Tensor, budget: int | None
) -> tuple[torch.Tensor, Tiling | None]:
    """Decode VAE latents (1, z, F', h, w) to pixels, tiled only where the whole frame would not fit;
    return the pixels (1, 3, F, H, W) and the tiling used (None: whole frames)."""
    return with_fallbacks(plan_tilings(vae, latents.shape, budget), partial(_decode, vae, latents))


def _decode(vae: AutoencoderKLWan, latents: torch.Tensor, tiling: Tiling | None) -> torch.Tensor:
    if tiling is None:
        return vae.decode(latents, return_dict=False)[0]
    vae.enable_tiling(
        tile_sample_min_height=tiling.size,
        tile_sample_min_width=tiling.size,
        tile_sample_stride_height=tiling.stride,
        tile_sample_stride_width=tiling.stride,
    )
    try:
        return vae.decode(latents, return_dict=False)[0]
    finally:
        vae.disable_tiling()  # encoding (image and video conditioning) stays untiled


#: ``weights_dtype`` -> how the transformers store their weights (computing in the engine's dtype)
STORAGE_DTYPES = {"fp8": torch.float8_e4m3fn}


def store_weights(transformers: Sequence[nn.Module], weights_dtype: str | None) -> dict[str, object]:
    """Store the transformers' weights in ``weights_dtype`` (diffusers' layerwise casting: each layer's
    weights are cast up to the compute dtype just for its forward); return what was done, for the record.

    Done on the CPU, before the weights move to the device; the transformers' projections stay unfused
    (``speedups.FUSED_QKV_MODELS``), so every layer gets its casting hooks.
    """
    if weights_dtype is None:
        return {}
    storage = STORAGE_DTYPES[weights_dtype]
    for transformer in transformers:
        transformer.enable_layerwise_casting(storage_dtype=storage, compute_dtype=transformer.dtype)
    return {"weights_dtype": weights_dtype}


def prepare_transformer_modules(
    text_encoder: nn.Module,
    modules: Sequence[nn.Module],
    transformers: Sequence[nn.Module],
    device: torch.device,
    speedups: Speedups,
) -> tuple[torch.device, dict[str, object]]:
    """Apply ``speedups`` to a transformer model's modules (``modules``: what runs after the text
    encoder, in order, ``transformers`` among them) and place its text encoder; return where the text
    encoder runs and what was applied, for the record."""
    encoder_device = text_encoder_device(speedups.text_encoder_device, device)
    stored = store_weights(transformers, speedups.weights_dtype)
    on_device = [text_encoder] if encoder_device == device else []
    applied = {**prepare_modules([*on_device, *modules], transformers[0], device, speedups), **stored}
    if speedups.remembers_text(device):
        applied["context_cache"] = True
    if not on_device:
        text_encoder.eval().requires_grad_(False)
        applied["text_encoder_device"] = "cpu"
    return encoder_device, applied


def text_encoder_device(choice: str, device: torch.device) -> torch.device:
    """Where the UMT5 encoder lives and runs: the engine's device ("auto") or the CPU ("cpu"), where
    it takes no accelerator memory; its embeddings are moved to the engine's device."""
    if choice not in ("auto", "cpu"):
        raise ValueError(f"text_encoder_device: {choice!r}; auto or cpu")
    return torch.device("cpu") if choice == "cpu" else device
