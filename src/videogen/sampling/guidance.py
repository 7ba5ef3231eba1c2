"""Per-frame classifier-free guidance schedules of the SVD family."""

from __future__ import annotations

import torch


def linear_guidance(minimum: float, maximum: float, num_frames: int) -> torch.Tensor:
    """SVD's per-frame guidance: from ``minimum`` at the first frame to ``maximum`` at the last."""
    return torch.linspace(minimum, maximum, num_frames)


def triangle_guidance(minimum: float, maximum: float, num_frames: int) -> torch.Tensor:
    """SV3D's per-frame guidance (sgm TrianglePredictionGuider, period 1): ``minimum`` at both ends,
    ``maximum`` in the middle, linear in between."""
    position = torch.linspace(0, 1, num_frames)
    return minimum + (maximum - minimum) * (1 - (2 * position - 1).abs())
