"""Full-size models with random weights in diffusers layout, built once and kept in the cache.

Same layers and shapes as the published checkpoints (``videogen.architectures``), so they cost the
same compute and memory; nothing is downloaded. The tokenizer is the tiny generated one (the text
encoder keeps CLIP's 49408-token embedding), which changes nothing a benchmark measures.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import diffusers
import transformers

from videogen.architectures import ARCHITECTURES, Architecture
from videogen.testing._layout import save_component, seeded, write_model_index
from videogen.testing._ltx import LTX_COMPONENTS, ltx_scheduler
from videogen.testing._svd import SVD_COMPONENTS, write_clip_image_processor
from videogen.testing._tokenizer import write_tiny_clip_tokenizer
from videogen.testing._unet3d import UNET3D_COMPONENTS
from videogen.testing._wan import (
    WAN_COMPONENTS,
    add_pipeline_settings,
    umt5_vocab,
    wan_unipc_scheduler,
    write_tiny_umt5_tokenizer,
)

log = logging.getLogger(__name__)


def random_weights_dir(name: str, seed: int = 0) -> Path:
    """Where the random-weight model ``name`` is kept (``$VIDEOGEN_CACHE`` or ~/.cache/videogen)."""
    root = os.environ.get("VIDEOGEN_CACHE") or Path.home() / ".cache" / "videogen"
    return Path(root) / "random-weights" / f"{name}-seed{seed}"


def random_model(name: str, seed: int = 0) -> Path:
    """The folder of architecture ``name`` with random weights drawn from ``seed``, built on first use."""
    folder = random_weights_dir(name, seed)
    if (folder / "model_index.json").is_file():
        return folder
    staging = folder.with_name(f".tmp-{os.getpid()}-{folder.name}")
    shutil.rmtree(staging, ignore_errors=True)
    log.warning("building %s with random weights in %s (once; several GB)", name, folder)
    try:
        write_random_model(ARCHITECTURES[name], staging, seed)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def write_random_model(arch: Architecture, folder: Path, seed: int) -> None:
    """Write every component of ``arch`` into ``folder``, one at a time to bound memory."""
    folder.mkdir(parents=True)
    if arch.family in _WRITERS:
        _WRITERS[arch.family](arch, folder, seed)
        return
    unet_class = "UNet3DConditionModel" if arch.family == "unet3d" else "UNetSpatioTemporalConditionModel"
    parts: list[tuple[str, type, object]] = [
        ("unet", getattr(diffusers, unet_class), arch.unet),
        ("vae", getattr(diffusers, arch.vae_class), arch.vae),
    ]
    if arch.family == "unet3d":
        config = transformers.CLIPTextConfig(**arch.encoder)
        parts.append(("text_encoder", transformers.CLIPTextModel, config))
    else:
        config = transformers.CLIPVisionConfig(**arch.encoder)
        parts.append(("image_encoder", transformers.CLIPVisionModelWithProjection, config))
    _save_models(folder, parts, seed)
    if arch.family == "unet3d":
        write_tiny_clip_tokenizer(folder / "tokenizer")
        save_component(folder, "scheduler", diffusers.DDIMScheduler(**arch.scheduler))
        write_model_index(folder, "TextToVideoSDPipeline", UNET3D_COMPONENTS)
    else:
        write_clip_image_processor(folder / "feature_extractor")
        save_component(folder, "scheduler", diffusers.EulerDiscreteScheduler(**arch.scheduler))
        components = {**SVD_COMPONENTS, "vae": ("diffusers", arch.vae_class)}
        write_model_index(folder, "StableVideoDiffusionPipeline", components)


def _save_models(folder: Path, parts: list[tuple[str, type, object]], seed: int) -> None:
    """Build each (subfolder, class, config dict or transformers config) from ``seed`` and save it,
    one at a time to bound memory."""
    for name, cls, config in parts:
        with seeded(seed):
            model = cls(**config) if isinstance(config, dict) else cls(config)
        save_component(folder, name, model)
        del model


def _tiny_vocabulary_config(cls: type, encoder: dict) -> object:
    """A T5-style encoder config with the tiny generated tokenizer's vocabulary (the encoder's
    embedding has its vocabulary: rows no token reads cost nothing)."""
    return cls(
        **encoder, vocab_size=len(umt5_vocab()), pad_token_id=0, eos_token_id=1, decoder_start_token_id=0
    )


def write_random_wan(arch: Architecture, folder: Path, seed: int) -> None:
    """A WanPipeline folder: transformer, VAE and UMT5 encoder of ``arch``, the tiny generated UMT5
    tokenizer, UniPC with flow sigmas at the architecture's shift, and the model_index settings
    (expand_timesteps)."""
    encoder = _tiny_vocabulary_config(transformers.UMT5Config, arch.encoder)
    parts: list[tuple[str, type, object]] = [
        ("transformer", diffusers.WanTransformer3DModel, arch.unet),
        ("vae", diffusers.AutoencoderKLWan, arch.vae),
        ("text_encoder", transformers.UMT5EncoderModel, encoder),
    ]
    _save_models(folder, parts, seed)
    write_tiny_umt5_tokenizer(folder / "tokenizer")
    save_component(folder, "scheduler", wan_unipc_scheduler(**arch.scheduler))
    write_model_index(folder, "WanPipeline", WAN_COMPONENTS)
    add_pipeline_settings(folder, arch.pipeline)


def write_random_ltx(arch: Architecture, folder: Path, seed: int) -> None:
    """An LTXPipeline folder: transformer, VAE and T5 encoder of ``arch``, the tiny generated T5
    tokenizer and the LTX repos' flow-matching Euler scheduler (``ltx_scheduler``). The VAE's latent
    statistics stay at 0 / 1: they cost nothing."""
    encoder = _tiny_vocabulary_config(transformers.T5Config, arch.encoder)
    parts: list[tuple[str, type, object]] = [
        ("transformer", diffusers.LTXVideoTransformer3DModel, arch.unet),
        ("vae", diffusers.AutoencoderKLLTXVideo, arch.vae),
        ("text_encoder", transformers.T5EncoderModel, encoder),
    ]
    _save_models(folder, parts, seed)
    write_tiny_umt5_tokenizer(folder / "tokenizer")
    save_component(folder, "scheduler", ltx_scheduler(**arch.scheduler))
    write_model_index(folder, "LTXPipeline", LTX_COMPONENTS)


_WRITERS = {"wan": write_random_wan, "ltx": write_random_ltx}
