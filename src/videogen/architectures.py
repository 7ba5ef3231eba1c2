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

# Wan (config.json of Wan-AI/Wan2.1-T2V-1.3B-Diffusers and Wan-AI/Wan2.2-TI2V-5B-Diffusers; the 2.1 VAE
# is AutoencoderKLWan's defaults, the 2.2 VAE's latent statistics are left at 0 / 1: they cost nothing)
_WAN_TRANSFORMER: dict[str, Any] = {
    "patch_size": [1, 2, 2],
    "attention_head_dim": 128,
    "text_dim": 4096,
    "freq_dim": 256,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
WAN21_1_3B_TRANSFORMER: dict[str, Any] = {
    **_WAN_TRANSFORMER,
    "num_attention_heads": 12,
    "in_channels": 16,
    "out_channels": 16,
    "ffn_dim": 8960,
}
WAN22_5B_TRANSFORMER: dict[str, Any] = {
    **_WAN_TRANSFORMER,
    "num_attention_heads": 24,
    "in_channels": 48,
    "out_channels": 48,
    "ffn_dim": 14336,
}
WAN21_VAE: dict[str, Any] = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
}
WAN22_VAE: dict[str, Any] = {
    **WAN21_VAE,
    "base_dim": 160,
    "decoder_base_dim": 256,
    "z_dim": 48,
    "in_channels": 12,
    "out_channels": 12,
    "is_residual": True,
    "patch_size": 2,
    "scale_factor_spatial": 16,
    "scale_factor_temporal": 4,
    "latents_mean": [0.0] * 48,
    "latents_std": [1.0] * 48,
}
#: google/umt5-xxl's encoder (5.7B parameters, 4.6B without the embedding); ``vocab_size`` is set to
#: the tiny generated tokenizer's when the model is written, as the UNets keep CLIP's with theirs
UMT5_XXL_ENCODER: dict[str, Any] = {
    "d_model": 4096,
    "d_ff": 10240,
    "d_kv": 64,
    "num_heads": 64,
    "num_layers": 24,
    "feed_forward_proj": "gated-gelu",
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "layer_norm_epsilon": 1e-6,
    "dropout_rate": 0.0,
}

# LTX-Video 0.9.0 2B (config.json of Lightricks/LTX-Video: transformer/ and vae/; the VAE's config is
# AutoencoderKLLTXVideo's defaults, written out here so the count does not move with them)
LTX_VIDEO_TRANSFORMER: dict[str, Any] = {
    "in_channels": 128,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 32,
    "attention_head_dim": 64,
    "cross_attention_dim": 2048,
    "num_layers": 28,
    "activation_fn": "gelu-approximate",
    "qk_norm": "rms_norm_across_heads",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "caption_channels": 4096,
    "attention_bias": True,
    "attention_out_bias": True,
}
LTX_VIDEO_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "block_out_channels": [128, 256, 512, 512],
    "decoder_block_out_channels": [128, 256, 512, 512],
    "layers_per_block": [4, 3, 3, 3, 4],
    "decoder_layers_per_block": [4, 3, 3, 3, 4],
    "spatio_temporal_scaling": [True, True, True, False],
    "decoder_spatio_temporal_scaling": [True, True, True, False],
    "decoder_inject_noise": [False] * 5,
    "upsample_residual": [False] * 4,
    "upsample_factor": [1] * 4,
    "timestep_conditioning": False,
    "patch_size": 4,
    "patch_size_t": 1,
    "resnet_norm_eps": 1e-6,
    "scaling_factor": 1.0,
    "encoder_causal": True,
    "decoder_causal": False,
}
#: google/t5-v1_1-xxl's encoder: UMT5-XXL's shapes (T5 shares one relative position bias over the
#: layers where UMT5 has one per layer, which costs nothing); ``vocab_size`` as for UMT5
T5_XXL_ENCODER: dict[str, Any] = dict(UMT5_XXL_ENCODER)


@dataclass(frozen=True)
class Architecture:
    """Everything needed to write a full-size random-weight model folder in diffusers layout."""

    name: str
    family: str
    unet: dict[str, Any]  # the denoiser: the UNet, or Wan's transformer
    vae_class: str
    vae: dict[str, Any]
    encoder: dict[str, Any] = field(default_factory=dict)  # CLIP text, CLIP vision, UMT5 (wan), T5 (ltx)
    scheduler: dict[str, Any] = field(default_factory=dict)
    pipeline: dict[str, Any] = field(default_factory=dict)  # model_index.json settings (expand_timesteps)


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
        Architecture(
            "wan2.1-t2v-1.3b",
            "wan",
            WAN21_1_3B_TRANSFORMER,
            "AutoencoderKLWan",
            WAN21_VAE,
            UMT5_XXL_ENCODER,
            {"flow_shift": 3.0},
            {"boundary_ratio": None, "expand_timesteps": False},
        ),
        Architecture(
            "wan2.2-ti2v-5b",
            "wan",
            WAN22_5B_TRANSFORMER,
            "AutoencoderKLWan",
            WAN22_VAE,
            UMT5_XXL_ENCODER,
            {"flow_shift": 5.0},
            {"boundary_ratio": None, "expand_timesteps": True},
        ),
        Architecture(
            "ltx-video",
            "ltx",
            LTX_VIDEO_TRANSFORMER,
            "AutoencoderKLLTXVideo",
            LTX_VIDEO_VAE,
            T5_XXL_ENCODER,
            {"dynamic": True},  # ltx_scheduler's: 0.9.0 shifts its sigmas by the sequence length
        ),
    )
}
