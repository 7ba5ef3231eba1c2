"""Tiny Wan image-to-video models (WanImageToVideoPipeline layout).

The text encoder, tokenizer, VAE, scheduler and transformer shape are ``_wan``'s; what differs:

- "wan-i2v" (Wan-AI/Wan2.1-I2V-14B-480P-Diffusers): the transformer takes 36 channels (16 latents,
  4 mask, 16 condition latents) and CLIP image embeddings (``image_dim``, added key/value projections);
  a tiny CLIPVisionModel image encoder and its CLIPImageProcessor config.
- "wan-flf2v" (Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers): as "wan-i2v", and the transformer's image
  embedder has a position embedding over the first and the last image's tokens (``pos_embed_seq_len``),
  drawn at random like the other weights.
- "wan-a14b-i2v" (Wan-AI/Wan2.2-I2V-A14B-Diffusers): two 36-channel experts switched at
  ``boundary_ratio`` 0.9, no image encoder (model_index.json lists it and the processor as null).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from transformers import CLIPVisionConfig, CLIPVisionModel

from ._layout import save_component, save_random_model, write_model_index
from ._svd import CLIP_IMAGE_SIZE, write_clip_image_processor
from ._wan import (
    WAN_COMPONENTS,
    add_pipeline_settings,
    tiny_wan21_vae,
    tiny_wan_transformer,
    wan_unipc_scheduler,
    write_umt5_text_encoder,
)

#: the tiny CLIP vision tower's width: the I2V transformers' ``image_dim``
CLIP_HIDDEN_SIZE = 32
CLIP_PATCH_SIZE = 32
#: tokens per image: one per patch of the 224 x 224 input, and the class token
CLIP_TOKENS = (CLIP_IMAGE_SIZE // CLIP_PATCH_SIZE) ** 2 + 1
#: latents (16), the temporal mask (4) and the condition latents (16)
I2V_IN_CHANNELS = 16 + 4 + 16
#: where Wan 2.2 I2V-A14B hands over from the high-noise to the low-noise expert
A14B_I2V_BOUNDARY_RATIO = 0.9

I2V_COMPONENTS: dict[str, tuple[str, str]] = {
    **WAN_COMPONENTS,
    "image_encoder": ("transformers", "CLIPVisionModel"),
    "image_processor": ("transformers", "CLIPImageProcessor"),
}


def tiny_clip_vision_model() -> CLIPVisionModel:
    """A 2-layer CLIP vision tower at CLIP's real 224 x 224 input, with large patches to stay cheap."""
    config = CLIPVisionConfig(
        image_size=CLIP_IMAGE_SIZE,
        patch_size=CLIP_PATCH_SIZE,
        hidden_size=CLIP_HIDDEN_SIZE,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        hidden_act="gelu",
    )
    return CLIPVisionModel(config).eval()


def _write_wan21_image_model(folder: Path, seed: int, pos_embed_seq_len: int | None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def transformer() -> WanTransformer3DModel:
        model = tiny_wan_transformer(I2V_IN_CHANNELS, 16, CLIP_HIDDEN_SIZE, pos_embed_seq_len)
        pos_embed = model.condition_embedder.image_embedder.pos_embed
        if pos_embed is not None:
            # the class starts it at zero, where the order of the first and last image would not show
            torch.nn.init.normal_(pos_embed, std=0.5)
        return model

    save_random_model(folder, "transformer", transformer, seed)
    save_random_model(folder, "vae", tiny_wan21_vae, seed)
    save_random_model(folder, "image_encoder", tiny_clip_vision_model, seed)
    write_clip_image_processor(folder / "image_processor")
    write_umt5_text_encoder(folder, seed)
    save_component(folder, "scheduler", wan_unipc_scheduler(flow_shift=3.0))
    write_model_index(folder, "WanImageToVideoPipeline", I2V_COMPONENTS)
    add_pipeline_settings(folder, {"boundary_ratio": None, "expand_timesteps": False})
    return folder


def build_tiny_wan_i2v(folder: Path, seed: int = 0) -> Path:
    """Write a tiny Wan 2.1 I2V folder: one image, CLIP image embeddings and mask channels."""
    return _write_wan21_image_model(folder, seed, pos_embed_seq_len=None)


def build_tiny_wan_flf2v(folder: Path, seed: int = 0) -> Path:
    """Write a tiny Wan 2.1 FLF2V folder: a first and a last image, read as one token sequence."""
    return _write_wan21_image_model(folder, seed, pos_embed_seq_len=2 * CLIP_TOKENS)


def build_tiny_wan_a14b_i2v(folder: Path, seed: int = 0) -> Path:
    """Write a tiny Wan 2.2 I2V-A14B folder: two 36-channel experts, no image encoder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for offset, name in enumerate(("transformer", "transformer_2")):
        save_random_model(folder, name, lambda: tiny_wan_transformer(I2V_IN_CHANNELS, 16), seed + offset)
    save_random_model(folder, "vae", tiny_wan21_vae, seed)
    write_umt5_text_encoder(folder, seed)
    save_component(folder, "scheduler", wan_unipc_scheduler(flow_shift=5.0))
    components = {**WAN_COMPONENTS, "transformer_2": ("diffusers", "WanTransformer3DModel")}
    write_model_index(folder, "WanImageToVideoPipeline", components)
    settings = {"boundary_ratio": A14B_I2V_BOUNDARY_RATIO, "expand_timesteps": False}
    add_pipeline_settings(
        folder, {**settings, "image_encoder": [None, None], "image_processor": [None, None]}
    )
    return folder
