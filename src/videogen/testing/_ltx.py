"""Tiny LTX-Video models in the diffusers layout (LTXPipeline / LTXConditionPipeline folders).

The structure is the real one at a few hundred thousand parameters: a 2-layer LTXVideoTransformer3DModel
(patch 1, 8 latent channels, T5 captions of width 32), the LTX VAE with its real compression (32x in
space through a 4x pixel patch and three 2x stages, 8x in time, so frames are 8k + 1 and sizes
multiples of 32), a T5 v1.1 encoder (gated GELU) and a T5 tokenizer built offline from the same
Unigram vocabulary as the tiny UMT5 (``_wan.write_tiny_umt5_tokenizer``).

- "ltx" (Lightricks/LTX-Video 0.9.0): the first VAE, no timestep conditioning in its decoder; the
  scheduler shifts its sigmas dynamically from the sequence length (``use_dynamic_shifting``).
- "ltx-095" (Lightricks/LTX-Video-0.9.5): the 0.9.5 VAE (LTXVideo095DownBlock3D, residual upsamplers,
  a timestep-conditioned decoder, so decoding takes ``decode_timestep`` and draws noise), the folder
  names LTXConditionPipeline and its scheduler does not shift dynamically, as the 0.9.5 repo's.

The VAE's latent statistics (``latents_mean`` / ``latents_std``, saved buffers) are made up, different
per channel, so a normalisation that is skipped or swapped shows.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXVideoTransformer3DModel
from transformers import T5Config, T5EncoderModel

from ._layout import save_component, save_random_model, seeded, write_model_index
from ._wan import umt5_vocab, write_tiny_umt5_tokenizer

#: width of the tiny T5's hidden states, the transformer's ``caption_channels``
T5_HIDDEN_SIZE = 32
LATENT_CHANNELS = 8

LTX_COMPONENTS: dict[str, tuple[str, str]] = {
    "scheduler": ("diffusers", "FlowMatchEulerDiscreteScheduler"),
    "text_encoder": ("transformers", "T5EncoderModel"),
    "tokenizer": ("transformers", "T5TokenizerFast"),
    "transformer": ("diffusers", "LTXVideoTransformer3DModel"),
    "vae": ("diffusers", "AutoencoderKLLTXVideo"),
}


def tiny_t5_encoder() -> T5EncoderModel:
    """A 2-layer T5 v1.1 encoder (gated GELU, untied) over the tiny Unigram vocabulary."""
    config = T5Config(
        vocab_size=len(umt5_vocab()),
        d_model=T5_HIDDEN_SIZE,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return T5EncoderModel(config).eval()


def tiny_ltx_transformer() -> LTXVideoTransformer3DModel:
    """A 2-layer LTX transformer with 2 heads of 8 over 8-channel latents, patch 1 x 1 x 1."""
    return LTXVideoTransformer3DModel(
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=2,
        caption_channels=T5_HIDDEN_SIZE,
    )


def _with_statistics(vae: AutoencoderKLLTXVideo) -> AutoencoderKLLTXVideo:
    with seeded(4321):
        vae.latents_mean.copy_(torch.randn(LATENT_CHANNELS) * 0.3)
        vae.latents_std.copy_(0.6 + torch.rand(LATENT_CHANNELS))
    return vae


def tiny_ltx_vae() -> AutoencoderKLLTXVideo:
    """The LTX-Video 0.9.0 VAE's structure at width 8: no timestep conditioning, no injected noise."""
    return _with_statistics(
        AutoencoderKLLTXVideo(
            latent_channels=LATENT_CHANNELS,
            block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8),
            layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1, 1),
            spatio_temporal_scaling=(True, True, True, False),
            decoder_spatio_temporal_scaling=(True, True, True, False),
            decoder_inject_noise=(False,) * 5,
            upsample_residual=(False,) * 4,
            upsample_factor=(1,) * 4,
            patch_size=4,
        )
    )


def tiny_ltx095_vae() -> AutoencoderKLLTXVideo:
    """The LTX-Video 0.9.5 VAE's structure at small widths: spatial / temporal / spatiotemporal
    downsampling, residual upsamplers that halve the channels, a timestep-conditioned decoder."""
    return _with_statistics(
        AutoencoderKLLTXVideo(
            latent_channels=LATENT_CHANNELS,
            block_out_channels=(8, 8, 16, 16, 32),
            down_block_types=("LTXVideo095DownBlock3D",) * 4,
            decoder_block_out_channels=(8, 16, 32),
            layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1),
            spatio_temporal_scaling=(True, True, True, True),
            decoder_spatio_temporal_scaling=(True, True, True),
            decoder_inject_noise=(False,) * 4,
            downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
            upsample_residual=(True,) * 3,
            upsample_factor=(2, 2, 2),
            timestep_conditioning=True,
            patch_size=4,
            spatial_compression_ratio=32,
            temporal_compression_ratio=8,
        )
    )


def ltx_scheduler(dynamic: bool) -> FlowMatchEulerDiscreteScheduler:
    """The LTX repos' scheduler: sigmas stretched to end at 0.1 (``shift_terminal``); 0.9.0 shifts them
    by the sequence length (``mu``), 0.9.5 does not."""
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=dynamic,
        base_shift=0.95,
        max_shift=2.05,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
        shift_terminal=0.1,
    )


def _build(folder: Path, seed: int, vae, pipeline_class: str, dynamic: bool) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_random_model(folder, "transformer", tiny_ltx_transformer, seed)
    save_random_model(folder, "vae", vae, seed)
    save_random_model(folder, "text_encoder", tiny_t5_encoder, seed)
    write_tiny_umt5_tokenizer(folder / "tokenizer")
    save_component(folder, "scheduler", ltx_scheduler(dynamic))
    write_model_index(folder, pipeline_class, LTX_COMPONENTS)
    return folder


def build_tiny_ltx(folder: Path, seed: int = 0) -> Path:
    """Write a tiny LTX-Video 0.9.0 folder (LTXPipeline); latents are (1, 8, (F - 1) / 8 + 1, H/32, W/32)."""
    return _build(folder, seed, tiny_ltx_vae, "LTXPipeline", dynamic=True)


def build_tiny_ltx095(folder: Path, seed: int = 0) -> Path:
    """Write a tiny LTX-Video 0.9.5 folder (LTXConditionPipeline, timestep-conditioned VAE decoder)."""
    return _build(folder, seed, tiny_ltx095_vae, "LTXConditionPipeline", dynamic=False)
