"""Tiny SV3D orbit models: the SVD layout with SV3D's added conditioning vector and image decoder.

SV3D is not a diffusers pipeline; its folders keep ``StableVideoDiffusionPipeline`` as the class in
model_index.json, and videogen tells them apart from SVD by the UNet config alone: with
w = addition_time_embed_dim, projection_class_embeddings_input_dim is 3w for SVD, w for SV3D_u
(cond_aug) and 5w for SV3D_p (cond_aug at w, polar and azimuth at 2w each; the real models use
w = 256: 256 and 256 + 512 + 512). Stability's public SV3D checkpoints decode each frame with an
image decoder, so the VAE here is an AutoencoderKL, as the converted checkpoints have.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Literal

from ._layout import save_component, save_random_model, write_model_index
from ._svd import (
    ADDITION_TIME_EMBED_DIM,
    SVD_COMPONENTS,
    svd_euler_scheduler,
    tiny_clip_image_encoder,
    tiny_unet_spatio_temporal,
    write_clip_image_processor,
)
from ._unet3d import tiny_autoencoder_kl

SV3D_FRAMES = 21
SV3D_VECTOR_WIDTHS: dict[str, int] = {"u": ADDITION_TIME_EMBED_DIM, "p": 5 * ADDITION_TIME_EMBED_DIM}
SV3D_COMPONENTS: dict[str, tuple[str, str]] = {**SVD_COMPONENTS, "vae": ("diffusers", "AutoencoderKL")}


def build_tiny_sv3d(folder: Path, seed: int = 0, conditioning: Literal["u", "p"] = "u") -> Path:
    """Write a tiny random-weight SV3D_u (``conditioning="u"``) or SV3D_p (``"p"``) folder and return it.

    Weights depend only on ``seed``. Same image encoder, feature extractor and scheduler as the tiny
    SVD; latents are (batch, frames, 4, H/8, W/8).
    """
    try:
        vector_width = SV3D_VECTOR_WIDTHS[conditioning]
    except KeyError:
        raise ValueError(f"conditioning: {conditioning!r} is not 'u' or 'p'") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    unet = partial(tiny_unet_spatio_temporal, vector_width=vector_width, num_frames=SV3D_FRAMES)
    save_random_model(folder, "unet", unet, seed)
    save_random_model(folder, "vae", tiny_autoencoder_kl, seed)
    save_random_model(folder, "image_encoder", tiny_clip_image_encoder, seed)
    write_clip_image_processor(folder / "feature_extractor")
    save_component(folder, "scheduler", svd_euler_scheduler())
    write_model_index(folder, "StableVideoDiffusionPipeline", SV3D_COMPONENTS)
    return folder
