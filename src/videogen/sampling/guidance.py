"""Per-frame classifier-free guidance schedules of the SVD family."""

from __future__ import annotations

import math

import torch


def linear_guidance(minimum: float, maximum: float, num_frames: int) -> torch.Tensor:
    """SVD's per-frame guidance: from ``minimum`` at the first frame to ``maximum`` at the last."""
    return torch.linspace(minimum, maximum, num_frames)


def triangle_guidance(minimum: float, maximum: float, num_frames: int) -> torch.Tensor:
    """SV3D's per-frame guidance (sgm TrianglePredictionGuider, period 1): ``minimum`` at both ends,
    ``maximum`` in the middle, linear in between."""
    position = torch.linspace(0, 1, num_frames)
    return minimum + (maximum - minimum) * (1 - (2 * position - 1).abs())


def guided_steps(steps: int, guidance_end: float) -> int:
    """How many steps, from the first, use classifier-free guidance: ``ceil(guidance_end * steps)``.

    The later steps run the conditional branch alone (one UNet evaluation instead of two): by then
    the layout is fixed and guidance mostly sharpens details (the "CFG cut-off" trick).
    """
    return math.ceil(round(guidance_end * steps, 9))
