"""What Wan's image-to-video models are conditioned on, besides the prompt and the noisy latents.

- Wan 2.1 I2V and FLF2V: the CLIP image embeddings of the first (and last) frame, as the penultimate
  hidden state of a CLIPVisionModel (``clip_pixels``, ``clip_image_embeddings``), and 4 + z extra
  channels concatenated to the latents at every step: a temporal mask of the known frames and the VAE
  latents of a clip that is the first frame, zeros, and the last frame (``frame_mask``,
  ``condition_channels``).
- Wan 2.2 I2V-A14B: the same extra channels, no image embeddings (its transformers have no image_dim).
- Wan 2.2 TI2V-5B (``expand_timesteps``): the first frame's latent replaces the latents' first frame
  at every step, and its tokens run at timestep 0 while the others run at t (``first_frame_hold``).

The engine (``wan.WanEngine.image_conditioning``) encodes with its VAE (an ``Encoder``) and puts these
into its ``Conditioning``. Latents are normalised as the transformer sees them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import CLIPVisionModel

from videogen.families.svd_conditioning import image_to_tensor

#: pixels (1, 3, F, H, W) in [-1, 1] -> their VAE latents (the posterior's mode), normalised, float32
Encoder = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ClipPreprocess:
    """The CLIP image processor's settings (``image_processor/preprocessor_config.json``).

    Applied as transformers' PIL-backed CLIPImageProcessor applies them: resize (the shortest edge to
    ``shortest_edge``, or to ``resize_to``), center crop, rescale, normalise.
    """

    shortest_edge: int | None
    resize_to: tuple[int, int] | None  # (height, width), when the config gives both instead of an edge
    crop: tuple[int, int] | None  # (height, width); None: no center crop
    resample: int  # a PIL resampling filter (3: bicubic)
    rescale_factor: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_folder(cls, folder: Path, subfolder: str = "image_processor") -> ClipPreprocess:
        """Read a model folder's image processor config."""
        path = Path(folder) / subfolder / "preprocessor_config.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        size = config.get("size", {"shortest_edge": 224}) if config.get("do_resize", True) else None
        if isinstance(size, int):
            size = {"shortest_edge": size}
        crop = config.get("crop_size", 224) if config.get("do_center_crop", True) else None
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        if config.get("do_normalize", True):
            mean, std = tuple(config["image_mean"]), tuple(config["image_std"])
        return cls(
            shortest_edge=size.get("shortest_edge") if size else None,
            resize_to=(size["height"], size["width"]) if size and "height" in size else None,
            crop=(crop["height"], crop["width"]) if crop else None,
            resample=int(config.get("resample", 3)),
            rescale_factor=float(config.get("rescale_factor", 1 / 255))
            if config.get("do_rescale", True)
            else 1.0,
            mean=mean,  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
        )

    def target_size(self, width: int, height: int) -> tuple[int, int] | None:
        """The (width, height) an image of ``width`` x ``height`` is resized to; None: not resized."""
        if self.resize_to is not None:
            return self.resize_to[1], self.resize_to[0]
        if self.shortest_edge is None:
            return None
        short, long = sorted((width, height))
        new_long = int(self.shortest_edge * long / short)
        return (self.shortest_edge, new_long) if width <= height else (new_long, self.shortest_edge)


def clip_pixels(images: list[Image.Image], preprocess: ClipPreprocess) -> torch.Tensor:
    """The CLIP encoder's pixel values for ``images``: float32 (n, 3, crop height, crop width)."""
    return torch.stack([_clip_pixel_values(image, preprocess) for image in images])


def _clip_pixel_values(image: Image.Image, preprocess: ClipPreprocess) -> torch.Tensor:
    image = image.convert("RGB")
    size = preprocess.target_size(*image.size)
    if size is not None:
        image = image.resize(size, resample=preprocess.resample)
    pixels = np.asarray(image)
    if preprocess.crop is not None:
        pixels = _center_cropped(pixels, *preprocess.crop)
    scaled = (pixels.astype(np.float64) * preprocess.rescale_factor).astype(np.float32)
    mean = np.asarray(preprocess.mean, dtype=np.float32)
    std = np.asarray(preprocess.std, dtype=np.float32)
    return torch.from_numpy((scaled - mean) / std).permute(2, 0, 1)


def _center_cropped(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centre ``height`` x ``width`` of (h, w, 3) ``pixels``, zero-padded where the image is smaller."""
    if pixels.shape[0] < height or pixels.shape[1] < width:
        padded = np.zeros((max(height, pixels.shape[0]), max(width, pixels.shape[1]), 3), pixels.dtype)
        top, left = -(-(padded.shape[0] - pixels.shape[0]) // 2), -(-(padded.shape[1] - pixels.shape[1]) // 2)
        padded[top : top + pixels.shape[0], left : left + pixels.shape[1]] = pixels
        pixels = padded
    top, left = (pixels.shape[0] - height) // 2, (pixels.shape[1] - width) // 2
    return pixels[top : top + height, left : left + width]


@torch.no_grad()
def clip_image_embeddings(encoder: CLIPVisionModel, pixels: torch.Tensor) -> torch.Tensor:
    """The penultimate hidden state of the CLIP vision tower: (images, tokens, hidden), one row per image.

    For FLF2V the transformer's image embedder reads the two rows [first, last] as one sequence.
    """
    pixels = pixels.to(device=encoder.device, dtype=encoder.dtype)
    return encoder(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]


def frame_mask(
    num_frames: int, latent_height: int, latent_width: int, has_last: bool, temporal: int = 4
) -> torch.Tensor:
    """Which frames are given, as the transformer reads it: float32 (1, temporal, latent frames, h, w).

    Per pixel frame, 1 where the frame is known (the first; the last too for first-and-last-frame).
    The first frame counts ``temporal`` times (the VAE encodes it alone into the first latent frame),
    so the sequence is ``temporal`` * latent frames long; channel c of latent frame j holds entry
    ``temporal * j + c`` of it.
    """
    if (num_frames - 1) % temporal:
        raise ValueError(f"num_frames: {num_frames} is not {temporal}k+1")
    known = torch.zeros(num_frames)
    known[0] = 1
    if has_last:
        known[-1] = 1
    sequence = torch.cat([known[:1].repeat(temporal), known[1:]])
    latent_frames = sequence.numel() // temporal
    per_latent_frame = sequence.view(latent_frames, temporal).T  # (temporal, latent frames)
    return per_latent_frame[None, :, :, None, None].expand(
        1, temporal, latent_frames, latent_height, latent_width
    )


def condition_clip(first: Image.Image, last: Image.Image | None, num_frames: int) -> torch.Tensor:
    """The pixels the VAE encodes for the extra channels: float32 (1, 3, num_frames, H, W) in [-1, 1].

    The first frame, then zeros, then the last frame when there is one.
    """
    if last is not None and last.size != first.size:
        raise ValueError(f"last_image: {last.size[0]}x{last.size[1]} differs from the first image's size")
    start = image_to_tensor(first).unsqueeze(2)
    gap = num_frames - 1 - (last is not None)
    parts = [start, start.new_zeros(1, 3, gap, *start.shape[-2:])]
    if last is not None:
        parts.append(image_to_tensor(last).unsqueeze(2))
    return torch.cat(parts, dim=2)


def condition_channels(
    encode: Encoder, first: Image.Image, last: Image.Image | None, num_frames: int
) -> torch.Tensor:
    """The channels Wan I2V models take after the latents: [mask, condition latents], (1, 4 + z, F', h, w)."""
    latents = encode(condition_clip(first, last, num_frames))
    mask = frame_mask(num_frames, latents.shape[-2], latents.shape[-1], last is not None)
    return torch.cat([mask.to(latents), latents], dim=1)


def first_frame_hold(
    encode: Encoder, image: Image.Image, latent_shape: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Wan 2.2 TI2V-5B image to video: (keep, clean) holding the first latent frame at the image's latent.

    ``keep`` (1, 1, F', h, w) is 0 on the first latent frame and 1 elsewhere; ``clean`` (1, z, 1, h, w) is
    the image encoded alone, a one-frame clip. Where ``keep`` is 0 the transformer sees ``clean`` and
    its tokens run at timestep 0; the result keeps ``clean`` there too.
    """
    clean = encode(image_to_tensor(image).unsqueeze(2))
    keep = torch.ones((1, 1, *latent_shape[2:]), device=clean.device)
    keep[:, :, 0] = 0
    return keep, clean
