"""What Stable Video Diffusion is conditioned on, besides the noisy latents it denoises.

- The CLIP image embedding of the input, resized as Stability's conditioner resizes it
  (``resize_antialiased``).
- The VAE latent of the input after noise augmentation (``noise_augmented``): image +
  noise_aug_strength * randn, encoded by the engine.
- The added vector [fps_id, motion_bucket_id, cond_aug] for the whole video (``svd_conditioning``),
  with guidance growing linearly over the frames.

SV3D's vectors and its per-frame embedding path are in ``sv3d_conditioning``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from videogen.request import Request
from videogen.sampling.guidance import linear_guidance
from videogen.sampling.seeds import cpu_randn


@dataclass(frozen=True)
class Conditioning:
    """A request's added vector(s), the strength of the noise that augments its image, and guidance."""

    rows: list[list[float]]  # one row for the whole video, or one per frame when the layout is per frame
    noise_aug: float
    guidance: torch.Tensor  # (frames,)
    record: dict[str, object]


def resolved(request: Request, name: str) -> Any:
    """The request's ``name``, which the catalog's defaults must have filled in already."""
    value = getattr(request, name)
    if value is None:
        raise ValueError(f"the request is not resolved: {name} is None")
    return value


def svd_conditioning(request: Request) -> Conditioning:
    """[cond_fps, motion_bucket_id, noise_aug_strength] for the whole video, and linear guidance."""
    scalars = {
        name: resolved(request, name) for name in ("cond_fps", "motion_bucket_id", "noise_aug_strength")
    }
    guidance = linear_guidance(
        resolved(request, "min_guidance"), resolved(request, "max_guidance"), resolved(request, "num_frames")
    )
    record: dict[str, object] = {**scalars, "guidance_schedule": "linear"}
    return Conditioning([list(scalars.values())], scalars["noise_aug_strength"], guidance, record)


def noise_augmented(pixels: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """``pixels`` + ``strength`` * noise drawn (in float32, on the CPU) from ``generator``: the image
    the VAE encodes for the image latent. It is the first draw of a video's generator."""
    noise = cpu_randn(tuple(pixels.shape), generator, pixels.device, torch.float32)
    return pixels + strength * noise


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a float32 (1, 3, H, W) tensor in [-1, 1], as diffusers' processor makes it."""
    pixels = np.asarray(image.convert("RGB")).astype(np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1)[None] * 2.0 - 1.0


def resize_antialiased(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (batch, c, h, w) as SVD's CLIP conditioner does (kornia's antialiased bicubic resize).

    Per axis, a Gaussian blur with sigma = (scale - 1) / 2 (at least 0.001, so nothing when enlarging)
    and a kernel 4 sigma wide (at least 3, odd), reflect-padded; then bicubic with align_corners=True.
    diffusers' StableVideoDiffusionPipeline reproduces the same steps.
    """
    blurred = images
    for axis in (-1, -2):
        sigma = max((images.shape[axis] / size[axis] - 1) / 2, 0.001)
        blurred = _gaussian_blur(blurred, sigma, axis)
    return F.interpolate(blurred, size=size, mode="bicubic", align_corners=True)


def _gaussian_blur(images: torch.Tensor, sigma: float, axis: int) -> torch.Tensor:
    width = int(max(4 * sigma, 3))
    width += 1 - width % 2
    offsets = torch.arange(width, dtype=images.dtype, device=images.device) - width // 2
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    half = width // 2
    if axis == -1:
        kernel, padding = kernel.view(1, 1, 1, width), (half, half, 0, 0)
    else:
        kernel, padding = kernel.view(1, 1, width, 1), (0, 0, half, half)
    channels = images.shape[1]
    padded = F.pad(images, padding, mode="reflect")
    return F.conv2d(padded, kernel.expand(channels, 1, -1, -1), groups=channels)
