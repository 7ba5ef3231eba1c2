"""Noisy seeding: start denoising from an image or video instead of pure noise.

The clean latents are noised to the step that ``strength`` selects and denoised from there
(``start = steps - int(steps * strength)``, as diffusers' img2img pipelines do). The noise can
be independent per frame, shared by all frames, or a mix whose variances add to one. A pinned
first frame is re-noised to the current step after every step and is clean at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from videogen.sampling.seeds import cpu_randn


def start_timesteps(scheduler: SchedulerMixin, steps: int, strength: float) -> torch.Tensor:
    """The tail of the schedule that ``strength`` keeps; empty when strength rounds to no step."""
    kept = min(int(steps * strength), steps)
    start = (steps - kept) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    return scheduler.timesteps[start:]


def seeding_noise(
    shape: tuple[int, int, int, int],
    mode: str,
    mix: float,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Noise of shape (frames, channels, h, w) for the chosen mode.

    ``mix`` is the share of the variance that all frames have in common (mixed mode only).
    """
    frames, *rest = shape
    if mode == "independent":
        return cpu_randn(shape, generator, device, dtype)
    shared = cpu_randn((1, *rest), generator, device, dtype).expand(shape)
    if mode == "shared":
        return shared.clone()
    own = cpu_randn(shape, generator, device, dtype)
    return math.sqrt(mix) * shared + math.sqrt(1 - mix) * own


@dataclass
class FramePin:
    """Holds frame 0 to a clean latent through the denoising (a keyframe mask)."""

    clean: torch.Tensor  # (channels, h, w)
    noise: torch.Tensor  # (channels, h, w), the frame's own starting noise

    def apply(
        self, latents: torch.Tensor, scheduler: SchedulerMixin, next_timestep: torch.Tensor | None
    ) -> None:
        """Write frame 0 of ``latents`` (batch, channels, frames, h, w) at ``next_timestep``'s noise level.

        ``None`` means denoising is over: frame 0 becomes the clean latent itself.
        """
        if next_timestep is None:
            latents[:, :, 0] = self.clean
            return
        noised = scheduler.add_noise(self.clean[None], self.noise[None], next_timestep.reshape(1))
        latents[:, :, 0] = noised[0]
