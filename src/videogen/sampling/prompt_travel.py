"""Prompt travel within a segment: the prompt's embedding changes frame by frame.

The weights are shared by every family: over a segment's first frames the new prompt's weight rises
linearly from 0 (all the previous segment's prompt) to 1, the same ramp as the chained video's
cross-fade (``blend_weights``); a temporally compressed latent frame takes the mean weight of the
pixel frames it stands for (``latent_frame_weights``). How the blended embeddings reach the model is
the family's: diffusion transformers (Wan, LTX-Video) through ``frame_cross_attention``, the
ModelScope / Zeroscope UNet3D through ``travelling`` here.

The UNet3D conditions every frame on one text embedding: its forward repeats the (batch, tokens,
dim) embedding once per frame before the spatial transformers' cross-attention. While
``travelling`` is active, each spatial transformer is handed an embedding per frame of the prompt
branch instead: over the first frames a linear blend from the previous segment's prompt to this
one's (``blend_weights``, the same ramp as the chained video's cross-fade), then this one's. The
negative prompt's branch is left as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from diffusers.models import Transformer2DModel


def blend_weights(frames: int) -> np.ndarray:
    """The new side's weight at each of ``frames`` shared frames: 0 at the first (all the old one),
    rising linearly to 1 at the last; one frame is all the old one."""
    return np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)


def frame_weights(num_frames: int, frames: int) -> np.ndarray:
    """The new prompt's weight at each of ``num_frames`` frames: the ramp over the first ``frames``,
    then 1."""
    return np.concatenate([blend_weights(frames), np.ones(num_frames - frames)])


def latent_frame_weights(num_frames: int, frames: int, temporal: int) -> np.ndarray:
    """The new prompt's weight at each latent frame of a causal video VAE that compresses time by
    ``temporal``: latent frame 0 stands for pixel frame 0, latent frame j for the ``temporal`` pixel
    frames up to and including frame ``temporal * j``; each takes the mean of their weights."""
    pixel = frame_weights(num_frames, frames)
    latent = [pixel[:1].mean()]
    latent += [
        pixel[temporal * (j - 1) + 1 : temporal * j + 1].mean()
        for j in range(1, (num_frames - 1) // temporal + 1)
    ]
    return np.array(latent)


def travelled_weights(
    previous_prompt: str | None, prompt: str | None, num_frames: int, frames: int, temporal: int
) -> np.ndarray:
    """The new prompt's weight at the latent frames that travel (those below 1, the first few): none
    when there is no previous prompt or it is the same prompt."""
    if previous_prompt is None or previous_prompt == prompt:
        return np.zeros(0)
    weights = latent_frame_weights(num_frames, frames, temporal)
    return weights[weights < 1]  # the weights only rise


def blended(previous: torch.Tensor, new: torch.Tensor, weights: np.ndarray) -> torch.Tensor:
    """(len(weights), *new.shape): ``(1 - w) * previous + w * new`` for each weight."""
    return torch.stack([(1 - float(w)) * previous + float(w) * new for w in weights])


def frame_embeddings(previous: torch.Tensor, new: torch.Tensor, num_frames: int, frames: int) -> torch.Tensor:
    """(num_frames, tokens, dim): ``previous`` blended into ``new`` over the first ``frames``, then ``new``
    alone."""
    return blended(previous, new, frame_weights(num_frames, frames))


@contextlib.contextmanager
def travelling(unet: torch.nn.Module, per_frame: torch.Tensor) -> Iterator[None]:
    """Within the block, the UNet's prompt branch sees ``per_frame`` (frames, tokens, dim)."""
    frames = per_frame.shape[0]

    def swap(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        states = kwargs.get("encoder_hidden_states")
        if states is None:
            return None
        kept = states[: states.shape[0] - frames]  # the negative prompt's frames, when guided
        return args, {**kwargs, "encoder_hidden_states": torch.cat([kept, per_frame.to(states)])}

    handles = [
        module.register_forward_pre_hook(swap, with_kwargs=True)
        for module in unet.modules()
        if isinstance(module, Transformer2DModel)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
