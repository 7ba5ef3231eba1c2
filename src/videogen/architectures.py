"""The real models' architectures as config values, for building them with random weights.

``videogen bench --random-weights`` runs these: the same layers, shapes and compute as the published
checkpoints (config.json of the repos the catalog names; SV3D's from its sgm configs), so timings
and memory are those of the real models without downloading them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from videogen.convert.sv3d import SV3D_UNET_CONFIG, SV3D_VAE_CONFIG, SVD_SCHEDULER_CONFIG

_KL_F8 = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "scaling_factor": 0.18215,
}
"""The KL-f8 autoencoder every model here shares (SD's VAE); the decoders differ."""

MODELSCOPE_UNET: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock3D"] * 3 + ["DownBlock3D"],
    "up_block_types": ["UpBlock3D"] + ["CrossAttnUpBlock3D"] * 3,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "cross_attention_dim": 1024,
    "attention_head_dim": 64,
}
MODELSCOPE_TEXT_ENCODER: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "projection_dim": 512,
    "hidden_act": "gelu",
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
MODELSCOPE_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}
SVD_UNET: dict[str, Any] = {
    **SV3D_UNET_CONFIG,
    "sample_size": 96,
    "projection_class_embeddings_input_dim": 768,
    "num_frames": 14,
}
SVD_IMAGE_ENCODER: dict[str, Any] = {  # OpenCLIP ViT-H/14
    "image_size": 224,
    "patch_size": 14,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "projection_dim": 1024,
    "hidden_act": "gelu",
}


@dataclass(frozen=True)
class Architecture:
    """Everything needed to write a full-size random-weight model folder in diffusers layout."""

    name: str
    family: str
    unet: dict[str, Any]
    vae_class: str
    vae: dict[str, Any]
    encoder: dict[str, Any] = field(default_factory=dict)  # CLIP text (unet3d) or vision (svd) config
    scheduler: dict[str, Any] = field(default_factory=dict)


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture(
            "modelscope",
            "unet3d",
            MODELSCOPE_UNET,
            "AutoencoderKL",
            {**_KL_F8, "up_block_types": ["UpDecoderBlock2D"] * 4, "norm_num_groups": 32, "sample_size": 512},
            MODELSCOPE_TEXT_ENCODER,
            MODELSCOPE_SCHEDULER,
        ),
        Architecture(
            "svd",
            "svd",
            SVD_UNET,
            "AutoencoderKLTemporalDecoder",
            {**_KL_F8, "sample_size": 768, "force_upcast": True},
            SVD_IMAGE_ENCODER,
            SVD_SCHEDULER_CONFIG,
        ),
        Architecture(
            "svd-xt",
            "svd",
            {**SVD_UNET, "num_frames": 25},
            "AutoencoderKLTemporalDecoder",
            {**_KL_F8, "sample_size": 768, "force_upcast": True},
            SVD_IMAGE_ENCODER,
            SVD_SCHEDULER_CONFIG,
        ),
        Architecture(
            "sv3d-u",
            "svd",
            SV3D_UNET_CONFIG,
            "AutoencoderKL",
            SV3D_VAE_CONFIG,
            SVD_IMAGE_ENCODER,
            SVD_SCHEDULER_CONFIG,
        ),  # fmt: skip
        Architecture(
            "sv3d-p",
            "svd",
            {**SV3D_UNET_CONFIG, "projection_class_embeddings_input_dim": 1280},
            "AutoencoderKL",
            SV3D_VAE_CONFIG,
            SVD_IMAGE_ENCODER,
            SVD_SCHEDULER_CONFIG,
        ),
    )
}
