"""Where the learned metrics' encoders come from (kept free of torch so the CLI loads fast)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

CLIP_REPO = "openai/clip-vit-base-patch32"
AESTHETIC_CLIP_REPO = "openai/clip-vit-large-patch14"
DINO_REPO = "facebook/dino-vitb16"
AESTHETIC_HEAD_ENV = "VIDEOGEN_AESTHETIC_HEAD"


def _default_head() -> str | None:
    return os.environ.get(AESTHETIC_HEAD_ENV) or None


@dataclass(frozen=True)
class EncoderSources:
    """Where each learned metric's encoder comes from: a folder, or a Hub repo id found in the cache."""

    clip: str = CLIP_REPO
    dino: str = DINO_REPO
    aesthetic_clip: str = AESTHETIC_CLIP_REPO
    #: the LAION linear head file (sa_0_4_vit_l_14_linear.pth); default from $VIDEOGEN_AESTHETIC_HEAD
    aesthetic_head: str | None = field(default_factory=_default_head)
    device: str = "auto"
    #: False reports every learned metric as skipped without trying to load anything
    learned: bool = True
