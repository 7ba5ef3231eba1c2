"""Which Stable Video Diffusion model a UNet config is (SVD, SV3D_u or SV3D_p), from its added vector.

Kept free of torch so the catalog can describe a local folder without loading an engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from videogen.errors import UserError


@dataclass(frozen=True)
class VectorLayout:
    """The UNet's added conditioning vector: scalars, each embedded sinusoidally at its own width."""

    kind: str  # "svd", "sv3d_u" or "sv3d_p"
    widths: tuple[int, ...]

    @property
    def per_frame(self) -> bool:
        """Whether the vector changes per frame (camera angles), which stock diffusers cannot take."""
        return self.kind == "sv3d_p"


def vector_layout(unet_config: Mapping[str, Any]) -> VectorLayout:
    """Which model a UNetSpatioTemporalConditionModel config belongs to, from its vector widths.

    With w = addition_time_embed_dim (256 in the real models): SVD takes [fps_id, motion_bucket_id,
    cond_aug] at w each (3w); sv3d_u takes [cond_aug] (w); sv3d_p takes cond_aug at w then polar and
    azimuth at 2w each (5w), as sgm's ConcatTimestepEmbedderND outdims 256/512/512 in sv3d_p.yaml.
    """
    base = unet_config["addition_time_embed_dim"]
    total = unet_config["projection_class_embeddings_input_dim"]
    layouts = (
        VectorLayout("svd", (base, base, base)),
        VectorLayout("sv3d_u", (base,)),
        VectorLayout("sv3d_p", (base, 2 * base, 2 * base)),
    )
    for layout in layouts:
        if sum(layout.widths) == total:
            return layout
    raise UserError(
        f"model: the UNet's added vector is {total} wide with addition_time_embed_dim {base}; "
        f"videogen knows {3 * base} (SVD), {base} (SV3D_u) and {5 * base} (SV3D_p)"
    )
