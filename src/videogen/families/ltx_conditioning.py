"""LTX-Video's token layout and its conditioning: a first image, keyframes and a clip to re-noise.

The LTX transformer reads latents as a sequence of tokens, frame by frame, row by row (``pack``), and
places them by their coordinates in the video (rotary embeddings). Conditioning works on those
tokens:

- ``first_frame_tokens`` (diffusers' LTXImageToVideoPipeline): the first latent frame is the image's
  latents, held (strength 1) while the others are denoised; held tokens run at timestep 0.
- ``keyframe_tokens`` (LTXConditionPipeline): each keyframe is VAE-encoded; at frame 0 it is mixed
  into the video's first latent frames by its strength; later, its first latent frames (``PREFIX``)
  become extra tokens ahead of the video's, placed at the keyframe's frame, and any further latent
  frames of a clip are mixed into the video's frames they cover. Each token carries its strength:
  the timestep it runs at is at most (1 - strength) * 1000, and it is only stepped once the schedule
  comes down to that.

Random draws come from the video's generator in diffusers' order: the start noise, then per
keyframe the VAE posterior's sample and (after frame 0) the noise its extra tokens are mixed with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from videogen.errors import FieldError
from videogen.families.base import Keyframe
from videogen.sampling.seeds import cpu_randn

#: latent frames of a keyframe clip that become extra tokens (the rest are mixed into the video)
PREFIX = 2


@dataclass(frozen=True)
class Layout:
    """How latents map to tokens and positions: the transformer's patch sizes and the VAE's
    compression (pixels per latent in space and in time)."""

    patch: int
    patch_t: int
    spatial: int
    temporal: int

    def pack(self, latents: torch.Tensor) -> torch.Tensor:
        """(b, c, f, h, w) latents -> (b, tokens, c * patch_t * patch^2), frame by frame, row by row."""
        b, c, f, h, w = latents.shape
        p, pt = self.patch, self.patch_t
        grid = latents.reshape(b, c, f // pt, pt, h // p, p, w // p, p)
        return grid.permute(0, 2, 4, 6, 1, 3, 5, 7).flatten(4, 7).flatten(1, 3)

    def unpack(self, tokens: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """The inverse of ``pack`` for latents of ``shape`` (b, c, f, h, w)."""
        b, c, f, h, w = shape
        p, pt = self.patch, self.patch_t
        grid = tokens.reshape(b, f // pt, h // p, w // p, c, pt, p, p)
        return grid.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(shape)

    def token_frames(self, frames: int, height: int, width: int) -> torch.Tensor:
        """(tokens,) the latent frame each token of a (frames, height, width) latent grid starts at."""
        f = torch.arange(0, frames, self.patch_t)
        return f[:, None, None].expand(-1, height // self.patch, width // self.patch).flatten()

    def coords(self, frames: int, height: int, width: int, frame_index: int, fps: float) -> torch.Tensor:
        """(1, 3, tokens) where each token sits in the video: its first pixel frame in seconds (a
        causal VAE's first latent frame covers one pixel frame, each later one ``temporal``), shifted
        by ``frame_index``, and its top-left pixel row and column."""
        grid = torch.meshgrid(
            torch.arange(0, frames, self.patch_t),
            torch.arange(0, height, self.patch),
            torch.arange(0, width, self.patch),
            indexing="ij",
        )
        coords = torch.stack(grid).flatten(1)[None]
        scale = torch.tensor([self.temporal, self.spatial, self.spatial])[None, :, None]
        coords = coords * scale
        coords[:, 0] = (coords[:, 0] + 1 - self.temporal).clamp(min=0) + frame_index
        coords = coords.float()
        coords[:, 0] = coords[:, 0] * (1.0 / fps)
        return coords


@dataclass
class Tokens:
    """What the loop denoises, and what holds parts of it.

    - ``latents`` (1, tokens, c) float32: extra (keyframe) tokens first, then the video's.
    - ``strength`` (1, tokens) or None: how firmly each token is held to where it started (1: kept,
      0: free); None when nothing is conditioned.
    - ``start`` (1, tokens, c) or None: the conditioned start (diffusers' ``init_latents``), which the
      fully held tokens are re-noised from at each step (``image_cond_noise_scale``).
    - ``extra``: how many leading tokens are keyframes, dropped at the end.
    - ``coords`` (1, 3, tokens) or None: each token's position (LTXConditionPipeline); None: the
      transformer places a plain grid (LTXPipeline, LTXImageToVideoPipeline).
    """

    latents: torch.Tensor
    strength: torch.Tensor | None = None
    start: torch.Tensor | None = None
    extra: int = 0
    coords: torch.Tensor | None = None

    def video(self, latents: torch.Tensor) -> torch.Tensor:
        """The video's tokens of ``latents`` (the keyframes' dropped)."""
        return latents[:, self.extra :]


@dataclass(frozen=True)
class EncodedKeyframe:
    """A keyframe after the VAE: the posterior of its (trimmed) frames, drawn from once per video."""

    posterior: DiagonalGaussianDistribution
    pixel_frames: int
    frame_index: int
    strength: float


def trimmed_frames(keyframe: Keyframe, num_frames: int, temporal: int) -> np.ndarray:
    """A keyframe's frames cut to fit the video from its frame index and to 8k + 1 frames (a whole
    number of latent frames), as LTXConditionPipeline cuts a conditioning clip."""
    if not 0 <= keyframe.frame_index < num_frames:
        allowed = f"a frame of the video, 0 to {num_frames - 1}"
        raise FieldError("keyframe", f"frame_index {keyframe.frame_index}", allowed)
    count = min(len(keyframe.frames), num_frames - keyframe.frame_index)
    return keyframe.frames[: (count - 1) // temporal * temporal + 1]


def pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 RGB frames (n, H, W, 3) -> (1, 3, n, H, W) float32 in [-1, 1]."""
    scaled = torch.from_numpy(np.asarray(frames).astype(np.float32) / 255.0)
    return (scaled * 2 - 1).permute(3, 0, 1, 2)[None]


def first_frame_tokens(
    image_latents: torch.Tensor, shape: tuple[int, ...], layout: Layout, generator: torch.Generator
) -> Tokens:
    """LTXImageToVideoPipeline's start: the image's normalised latents (1, c, 1, h, w) as the first
    latent frame, held, and noise (drawn after the image's posterior sample) everywhere else."""
    held = torch.zeros((1, 1, *shape[2:]))
    held[:, :, 0] = 1.0
    noise = cpu_randn(tuple(shape), generator, image_latents.device, torch.float32)
    held = held.to(noise)
    latents = image_latents.repeat(1, 1, shape[2], 1, 1) * held + noise * (1 - held)
    return Tokens(layout.pack(latents), strength=layout.pack(held).squeeze(-1))


def keyframe_tokens(
    start: torch.Tensor,
    keyframes: list[EncodedKeyframe],
    normalise: Callable[[torch.Tensor], torch.Tensor],
    layout: Layout,
    fps: float,
    generator: torch.Generator,
) -> Tokens:
    """LTXConditionPipeline's start from the video's start latents (1, c, f, h, w) (noise, or a noised
    clip) and the keyframes, in order; the tokens carry positions and, with keyframes, strengths."""
    latents = start.clone()
    _, _, frames, height, width = latents.shape
    frame_strength = torch.zeros(frames, device=latents.device)
    extra_latents, extra_coords, extra_strength = [], [], []
    for keyframe in keyframes:
        encoded = normalise(keyframe.posterior.sample(generator).float())
        strength = keyframe.strength
        count = encoded.shape[2]
        if keyframe.frame_index == 0:
            latents[:, :, :count] = torch.lerp(latents[:, :, :count], encoded, strength)
            frame_strength[:count] = strength
            continue
        if keyframe.pixel_frames > 1 and count > PREFIX:
            first = keyframe.frame_index // layout.temporal + PREFIX
            last = first + count - PREFIX
            if last > frames:
                allowed = f"clips that end inside the video's {frames} latent frames"
                raise FieldError("keyframe", f"a clip at frame {keyframe.frame_index}", allowed)
            latents[:, :, first:last] = torch.lerp(
                latents[:, :, first:last], encoded[:, :, PREFIX:], strength
            )
            frame_strength[first:last] = strength
            encoded = encoded[:, :, :PREFIX]
        noise = cpu_randn(tuple(encoded.shape), generator, encoded.device, torch.float32)
        encoded = torch.lerp(noise, encoded, strength)
        packed = layout.pack(encoded)
        extra_latents.append(packed)
        extra_coords.append(layout.coords(encoded.shape[2], height, width, keyframe.frame_index, fps))
        extra_strength.append(torch.full(packed.shape[:2], strength, device=packed.device))
    coords = layout.coords(frames, height, width, 0, fps).to(latents.device)
    tokens = layout.pack(latents)
    if not keyframes:
        return Tokens(tokens, coords=coords)
    strength = frame_strength[layout.token_frames(frames, height, width).to(latents.device)][None]
    tokens = torch.cat([*extra_latents, tokens], dim=1)
    return Tokens(
        tokens,
        strength=torch.cat([*extra_strength, strength], dim=1),
        start=tokens.clone(),
        extra=sum(extra.shape[1] for extra in extra_latents),
        coords=torch.cat([*[c.to(coords) for c in extra_coords], coords], dim=2),
    )


def renoised_held(
    tokens: Tokens, latents: torch.Tensor, t: torch.Tensor, scale: float, generator: torch.Generator
) -> torch.Tensor:
    """LTXConditionPipeline's ``image_cond_noise_scale``: the fully held tokens (strength 1) put back to
    their start plus ``scale * t^2`` of fresh noise (t in [0, 1], a float32 tensor as in diffusers); a
    draw of every token's shape each step, as diffusers makes it."""
    assert tokens.start is not None and tokens.strength is not None
    noise = cpu_randn(tuple(latents.shape), generator, latents.device, torch.float32)
    held = (tokens.strength > 1.0 - 1e-6).unsqueeze(-1)
    return torch.where(held, tokens.start + scale * noise * (t**2), latents)


def linear_quadratic_sigmas(steps: int, threshold: float = 0.025) -> torch.Tensor:
    """LTX-Video's default schedule (LTXConditionPipeline): the noise level falls linearly by
    ``threshold`` over the first half of the steps, then quadratically to 0, meeting the line with
    the same slope. Returns the ``steps`` sigmas from 1 down (the final 0 left out)."""
    if steps < 2:
        return torch.tensor([1.0])
    linear = steps // 2
    quadratic = steps - linear
    # 1 - sigma = a i^2 + b i + c for i >= linear: equal to threshold at i = linear, 1 at i = steps
    gap = linear - threshold * steps
    a = gap / (linear * quadratic**2)
    b = threshold / linear - 2 * gap / quadratic**2
    c = a * linear**2
    done = [i * threshold / linear for i in range(linear)]
    done += [a * i**2 + b * i + c for i in range(linear, steps)]
    return torch.tensor([1.0 - x for x in done])


def sequence_shift(tokens: int, config: dict) -> float:
    """The dynamic shift ``mu`` for a sequence of ``tokens`` latents: linear in the length between the
    scheduler's base and max lengths (LTXPipeline's defaults where the config has none)."""
    base_len, max_len = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    base, top = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
    slope = (top - base) / (max_len - base_len)
    return tokens * slope + base - slope * base_len
