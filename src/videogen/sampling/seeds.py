"""Seeds and noise that repeat across devices."""

from __future__ import annotations

import secrets

import torch


def pick_seed(seed: int | None) -> tuple[int, bool]:
    """The seed to use and whether it was chosen at random (to be printed and recorded)."""
    if seed is not None:
        return seed, False
    return secrets.randbelow(2**32), True


def video_seeds(seed: int, num_videos: int) -> list[int]:
    """Batch item k uses seed + k, so any single video can be reproduced on its own."""
    return [seed + k for k in range(num_videos)]


def cpu_generator(seed: int) -> torch.Generator:
    """Every random draw of a video comes from one CPU generator, so results repeat across devices."""
    return torch.Generator("cpu").manual_seed(seed)


def cpu_randn(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Gaussian noise drawn on the CPU in fp32 (the same on every device), then moved and cast."""
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)
