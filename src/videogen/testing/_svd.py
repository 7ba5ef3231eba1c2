"""A tiny Stable Video Diffusion image-to-video model (StableVideoDiffusionPipeline layout)."""

from __future__ import annotations

import json
from pathlib import Path

from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from ._layout import save_component, save_random_model, write_model_index

IMAGE_EMBED_DIM = 32
ADDITION_TIME_EMBED_DIM = 32

# StableVideoDiffusionPipeline resizes every PIL input to 224x224 for the image encoder before
# the feature extractor sees it, so the tiny encoder keeps CLIP's real 224 input size and uses
# large patches to stay cheap.
CLIP_IMAGE_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# As stabilityai/stable-video-diffusion-img2vid lists its components.
SVD_COMPONENTS: dict[str, tuple[str, str]] = {
    "feature_extractor": ("transformers", "CLIPImageProcessor"),
    "image_encoder": ("transformers", "CLIPVisionModelWithProjection"),
    "scheduler": ("diffusers", "EulerDiscreteScheduler"),
    "unet": ("diffusers", "UNetSpatioTemporalConditionModel"),
    "vae": ("diffusers", "AutoencoderKLTemporalDecoder"),
}


def tiny_unet_spatio_temporal(
    vector_width: int = 3 * ADDITION_TIME_EMBED_DIM, num_frames: int = 14
) -> UNetSpatioTemporalConditionModel:
    """Two resolution levels; by default the added-time input is three scalars (fps, motion, noise aug).

    SV3D's UNets differ only in ``vector_width`` (see ``_sv3d``) and their 21 frames.
    """
    return UNetSpatioTemporalConditionModel(
        sample_size=32,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64),
        layers_per_block=2,
        num_attention_heads=(2, 4),
        cross_attention_dim=IMAGE_EMBED_DIM,
        addition_time_embed_dim=ADDITION_TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=vector_width,
        num_frames=num_frames,
    )


def tiny_temporal_decoder_vae() -> AutoencoderKLTemporalDecoder:
    """Four blocks, so pixels are 8x the latent size. Its GroupNorms use 32 groups, hence 32 channels."""
    return AutoencoderKLTemporalDecoder(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        block_out_channels=(32, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        sample_size=256,
        scaling_factor=0.18215,
    )


def tiny_clip_image_encoder() -> CLIPVisionModelWithProjection:
    config = CLIPVisionConfig(
        image_size=CLIP_IMAGE_SIZE,
        patch_size=32,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=IMAGE_EMBED_DIM,
        hidden_act="gelu",
    )
    return CLIPVisionModelWithProjection(config)


def svd_euler_scheduler() -> EulerDiscreteScheduler:
    """Euler configured as SVD's scheduler/scheduler_config.json (EDM v-prediction, Karras sigmas)."""
    return EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        interpolation_type="linear",
        use_karras_sigmas=True,
        sigma_min=0.002,
        sigma_max=700.0,
        timestep_spacing="leading",
        timestep_type="continuous",
        steps_offset=1,
    )


def write_clip_image_processor(folder: Path) -> None:
    """Write SVD's preprocessor_config.json by hand.

    transformers 5 without torchvision instantiates the PIL fallback class for
    ``CLIPImageProcessor``; writing the file directly keeps it identical to the real one and
    loadable by either backend.
    """
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "crop_size": {"height": CLIP_IMAGE_SIZE, "width": CLIP_IMAGE_SIZE},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": list(CLIP_MEAN),
        "image_processor_type": "CLIPImageProcessor",
        "image_std": list(CLIP_STD),
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": CLIP_IMAGE_SIZE},
    }
    text = json.dumps(config, indent=2) + "\n"
    (folder / "preprocessor_config.json").write_text(text, encoding="utf-8")


def build_tiny_svd(folder: Path, seed: int = 0) -> Path:
    """Write a tiny random-weight StableVideoDiffusionPipeline folder and return its path.

    Weights depend only on ``seed``. Latents are (batch, frames, 4, H/8, W/8); H and W must be
    multiples of 8 (the pipeline checks). The image encoder always sees 224x224 pixels.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_random_model(folder, "unet", tiny_unet_spatio_temporal, seed)
    save_random_model(folder, "vae", tiny_temporal_decoder_vae, seed)
    save_random_model(folder, "image_encoder", tiny_clip_image_encoder, seed)
    write_clip_image_processor(folder / "feature_extractor")
    save_component(folder, "scheduler", svd_euler_scheduler())
    write_model_index(folder, "StableVideoDiffusionPipeline", SVD_COMPONENTS)
    return folder
