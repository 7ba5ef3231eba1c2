"""What every model family engine returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image


@dataclass
class GeneratedVideo:
    """One video: float frames in [0, 1], shape (frames, height, width, 3), and how it was made."""

    frames: np.ndarray
    seed: int
    timings: dict[str, float] = field(default_factory=dict)
    record: dict[str, object] = field(default_factory=dict)
    #: what the engine's ``decode_saved`` needs to decode the video again ("latents", on the CPU, and
    #: family extras), when the request asks to keep it (``save_latents``)
    latents: dict[str, torch.Tensor] | None = None


@dataclass
class Inputs:
    """Decoded conditioning inputs, prepared by the front door (engines never read files).

    ``image`` and ``last_image`` are RGB; ``video`` is uint8 (frames, height, width, 3). They are
    already fitted to the request's size where the family needs that.
    """

    image: Image.Image | None = None
    #: the frame a first-and-last-frame model ends on (Wan FLF2V), fitted like ``image``
    last_image: Image.Image | None = None
    video: np.ndarray | None = None
