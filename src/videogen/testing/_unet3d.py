"""A tiny ModelScope-style text-to-video model (TextToVideoSDPipeline layout)."""

from __future__ import annotations

from pathlib import Path

from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from ._layout import save_component, save_random_model, write_model_index
from ._tokenizer import BOS_TOKEN, EOS_TOKEN, MODEL_MAX_LENGTH, tiny_clip_vocab, write_tiny_clip_tokenizer

TEXT_HIDDEN_SIZE = 32

# As ali-vilab/text-to-video-ms-1.7b lists its components.
UNET3D_COMPONENTS: dict[str, tuple[str, str]] = {
    "scheduler": ("diffusers", "DDIMScheduler"),
    "text_encoder": ("transformers", "CLIPTextModel"),
    "tokenizer": ("transformers", "CLIPTokenizer"),
    "unet": ("diffusers", "UNet3DConditionModel"),
    "vae": ("diffusers", "AutoencoderKL"),
}


def tiny_unet3d() -> UNet3DConditionModel:
    """Two resolution levels, layers_per_block 2 as in ModelScope.

    UNet3DConditionModel reads ``attention_head_dim`` as the number of heads, so 8 gives 8 heads of
    4 and 8 channels (the real model: 64 heads of 5, 10 and 20 channels).
    """
    return UNet3DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        block_out_channels=(32, 64),
        layers_per_block=2,
        norm_num_groups=32,
        cross_attention_dim=TEXT_HIDDEN_SIZE,
        attention_head_dim=8,
    )


def tiny_autoencoder_kl() -> AutoencoderKL:
    """Four blocks, so pixels are 8x the latent size as in the real models."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 16, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=256,
        scaling_factor=0.18215,
    )


def tiny_clip_text_encoder() -> CLIPTextModel:
    vocab = tiny_clip_vocab()
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=TEXT_HIDDEN_SIZE,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MODEL_MAX_LENGTH,
        projection_dim=TEXT_HIDDEN_SIZE,
        hidden_act="gelu",
        bos_token_id=vocab[BOS_TOKEN],
        eos_token_id=vocab[EOS_TOKEN],
        pad_token_id=vocab[EOS_TOKEN],
    )
    return CLIPTextModel(config)


def modelscope_ddim_scheduler() -> DDIMScheduler:
    """DDIM configured as ModelScope's scheduler/scheduler_config.json."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def build_tiny_unet3d(folder: Path, seed: int = 0) -> Path:
    """Write a tiny random-weight TextToVideoSDPipeline folder and return its path.

    Weights depend only on ``seed``. Latents are (batch, 4, frames, H/8, W/8); any frame count
    works; H and W must be multiples of 8.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_random_model(folder, "unet", tiny_unet3d, seed)
    save_random_model(folder, "vae", tiny_autoencoder_kl, seed)
    save_random_model(folder, "text_encoder", tiny_clip_text_encoder, seed)
    write_tiny_clip_tokenizer(folder / "tokenizer")
    save_component(folder, "scheduler", modelscope_ddim_scheduler())
    write_model_index(folder, "TextToVideoSDPipeline", UNET3D_COMPONENTS)
    return folder
