"""VAE decoding in chunks of frames: a chunk sized to the free memory, and a retry on out-of-memory.

Decoding is the step most likely to run out of memory (an SVD-XT decode costs more than a whole
guided denoising step), and it comes last: losing the run there wastes every step before it. So the
chunk is sized from the memory that is free, and an out-of-memory error still halves it and decodes
the remaining frames from the latents already computed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from diffusers import AutoencoderKL, AutoencoderKLTemporalDecoder
from torch import nn

from videogen.errors import UserError, is_out_of_memory
from videogen.memory import free_memory

log = logging.getLogger(__name__)
Option = TypeVar("Option")

VAE_CLASSES: dict[str, type[AutoencoderKL] | type[AutoencoderKLTemporalDecoder]] = {
    "AutoencoderKLTemporalDecoder": AutoencoderKLTemporalDecoder,
    "AutoencoderKL": AutoencoderKL,
}

#: Peak bytes of a decode per output pixel and frame, fp32, by VAE class: measured on the full-size
#: SD/SVD VAEs on the CPU, rounded up (``videogen bench --decode-budget-mb`` checks it; BENCHMARKS.md).
DECODE_BYTES_PER_PIXEL = {"AutoencoderKL": 2700, "AutoencoderKLTemporalDecoder": 4000}
#: ... plus about this much whatever the size
DECODE_FIXED_BYTES = 160 * 2**20
#: share of the free memory a decode may plan to use (allocators fragment; other work goes on)
MEMORY_SHARE = 0.7


def vae_class(folder: Path) -> type[AutoencoderKL] | type[AutoencoderKLTemporalDecoder]:
    """The VAE class a diffusers-layout folder names in ``vae/config.json``."""
    name = json.loads((Path(folder) / "vae" / "config.json").read_text())["_class_name"]
    try:
        return VAE_CLASSES[name]
    except KeyError:
        raise UserError(
            f"model: {folder} has a {name} VAE; videogen decodes with {', '.join(VAE_CLASSES)}"
        ) from None


def vae_decoder(vae: AutoencoderKL | AutoencoderKLTemporalDecoder) -> Callable[[torch.Tensor], torch.Tensor]:
    """(frames, 4, h, w) latents, unscaled -> images; the temporal decoder is told the chunk's frame count."""
    if isinstance(vae, AutoencoderKLTemporalDecoder):
        return lambda part: vae.decode(part, num_frames=len(part)).sample
    return lambda part: vae.decode(part).sample


def decode_bytes(vae: nn.Module, frames: int, height: int, width: int, dtype: torch.dtype) -> int:
    """Estimated peak memory of decoding ``frames`` frames of ``height`` x ``width`` pixels at once."""
    per_pixel = DECODE_BYTES_PER_PIXEL.get(type(vae).__name__, max(DECODE_BYTES_PER_PIXEL.values()))
    scale = torch.finfo(dtype).bits / 32
    return int(DECODE_FIXED_BYTES + per_pixel * scale * frames * height * width)


def fitting_chunk(
    vae: nn.Module,
    num_frames: int,
    height: int,
    width: int,
    dtype: torch.dtype,
    device: torch.device,
    cap: int | None = None,
    budget: int | None = None,
) -> int:
    """The most frames (at most ``cap``) whose decode fits in ``budget`` bytes (default: a share of
    the free memory); at least 1."""
    if budget is None:
        free = free_memory(device)
        if free is None:
            return min(num_frames, cap or num_frames)
        budget = int(free * MEMORY_SHARE)
    per_frame = decode_bytes(vae, 1, height, width, dtype) - DECODE_FIXED_BYTES
    fits = (budget - DECODE_FIXED_BYTES) // max(per_frame, 1)
    return int(max(1, min(num_frames, cap or num_frames, fits)))


def decode_in_chunks(
    decode: Callable[[torch.Tensor], torch.Tensor], latents: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, int]:
    """Decode (frames, channels, h, w) latents ``chunk`` frames at a time.

    Returns the decoded images and the chunk size that finally worked.
    """
    parts: list[torch.Tensor] = []
    start = 0
    while start < len(latents):
        part = latents[start : start + chunk]
        try:
            parts.append(decode(part))
        except Exception as exc:
            if not is_out_of_memory(exc) or chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            log.warning("out of memory while decoding; retrying with decode_chunk_size %d", chunk)
            continue
        start += len(part)
    return torch.cat(parts), chunk


def with_fallbacks(
    options: Sequence[Option], run: Callable[[Option], torch.Tensor]
) -> tuple[torch.Tensor, Option]:
    """``run`` the first option; on an out-of-memory error free the cache and try the next one.
    Any other error, or running out of options, raises."""
    for attempt, option in enumerate(options):
        try:
            return run(option), option
        except Exception as exc:
            if not is_out_of_memory(exc) or attempt == len(options) - 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            log.warning("out of memory while decoding %s; retrying with %s", option, options[attempt + 1])
    raise ValueError("options: none to try")


def from_first_fitting(
    options: Sequence[Option], cost: Callable[[Option], int], budget: int | None
) -> list[Option]:
    """``options`` (largest first) from the first whose ``cost`` fits in ``budget`` bytes, the rest kept
    as fallbacks; only the smallest when none fits; all of them when the budget is unknown."""
    if budget is None:
        return list(options)
    for index, option in enumerate(options):
        if cost(option) <= budget:
            return list(options[index:])
    return list(options[-1:])
