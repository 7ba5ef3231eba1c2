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


@dataclass(frozen=True)
class Keyframe:
    """Frames placed at ``frame_index`` of the video (LTX-Video's conditions): one image, or the frames
    of a clip, uint8 (n, height, width, 3) fitted to the request's size; ``strength`` 1 holds them
    as given, less lets the model change them."""

    frames: np.ndarray
    frame_index: int
    strength: float = 1.0


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
    #: the image whose CLIP embedding conditions the video in place of ``image``'s (SVD, Wan 2.1 I2V):
    #: a chain's later segments start from their frame but keep the original image's identity
    anchor: Image.Image | None = None
    #: prompt travel (a chained segment): the prompt the first ``travel_frames`` frames blend from
    previous_prompt: str | None = None
    travel_frames: int = 0
    #: LTX-Video keyframes, in the order the request gives them
    keyframes: list[Keyframe] = field(default_factory=list)
