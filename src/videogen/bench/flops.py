"""FLOPs of one UNet evaluation, one decoded frame and the conditioning encoder, counted once.

The models are built on the meta device from the folder's configs and run on meta tensors under
torch's FlopCounterMode: shapes only, no weights and no arithmetic, so a full-size count takes about
a second. Attention and matrix products are counted; element-wise work is not (as in the usual
TFLOP/s figures).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode

from videogen.families.decoding import vae_class, vae_decoder

log = logging.getLogger(__name__)
TEXT_TOKENS = 77
#: the prompt length Wan's UMT5 encoder pads to (MAX_SEQUENCE_LENGTH in families/wan.py)
WAN_TEXT_TOKENS = 512


def _count(run) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        run()
    return counter.get_total_flops()


def _meta(cls: type, folder: Path, subfolder: str) -> Any:
    config = cls.load_config(folder, subfolder=subfolder)
    with torch.device("meta"):
        model = cls.from_config(config)
    return model.to("meta")  # legacy constructors (torch.Tensor([...])) ignore the device context


def _meta_transformers(cls: type, folder: Path, subfolder: str) -> Any:
    path = folder / subfolder / "config.json"
    if not path.is_file():  # transformers 5 would fall back to the class's default config
        raise FileNotFoundError(path)
    config = cls.config_class.from_pretrained(folder, subfolder=subfolder)
    with torch.device("meta"):
        return cls(config)


def count_flops(folder: Path, family: str, num_frames: int, height: int, width: int) -> dict[str, Any]:
    """TFLOP of one UNet evaluation (one batch item), of decoding one frame and of one encoder call.

    A count that fails (a model this code does not know how to feed) is None with the reason.
    """
    if family == "wan":
        return _counted(_wan_counts(folder, num_frames, height, width))
    if family == "ltx":
        return _counted(_ltx_counts(folder, num_frames, height, width))
    h, w = height // 8, width // 8
    meta = {"device": "meta"}

    def unet() -> int:
        if family == "unet3d":
            model = _meta(diffusers.UNet3DConditionModel, folder, "unet")
            sample = torch.empty(1, model.config.in_channels, num_frames, h, w, **meta)
            text = torch.empty(1, TEXT_TOKENS, model.config.cross_attention_dim, **meta)
            return _count(lambda: model(sample, torch.tensor(500.0, **meta), encoder_hidden_states=text))
        model = _meta(diffusers.UNetSpatioTemporalConditionModel, folder, "unet")
        sample = torch.empty(1, num_frames, model.config.in_channels, h, w, **meta)
        image = torch.empty(1, 1, model.config.cross_attention_dim, **meta)
        scalars = model.config.projection_class_embeddings_input_dim // model.config.addition_time_embed_dim
        added = torch.empty(1, scalars, **meta)
        return _count(lambda: model(sample, torch.tensor(1.0, **meta), image, added_time_ids=added))

    def decode() -> int:
        model = _meta(vae_class(folder), folder, "vae")
        return _count(lambda: vae_decoder(model)(torch.empty(1, 4, h, w, **meta)))

    def encode() -> int:
        if family == "unet3d":
            model = _meta_transformers(transformers.CLIPTextModel, folder, "text_encoder")
            ids = torch.zeros(2, TEXT_TOKENS, dtype=torch.long, **meta)  # negative and positive prompt
            return _count(lambda: model(ids))
        model = _meta_transformers(transformers.CLIPVisionModelWithProjection, folder, "image_encoder")
        side = model.config.image_size
        return _count(lambda: model(torch.empty(1, 3, side, side, **meta)))

    return _counted({"unet_evaluation": unet, "decode_frame": decode, "encode": encode})


def _counted(counters: dict[str, Callable[[], float]]) -> dict[str, Any]:
    """Run each counter: TFLOP per name, or None and the reason when it fails."""
    counts: dict[str, Any] = {}
    for name, count in counters.items():
        try:
            counts[f"{name}_tflop"] = count() / 1e12
        except Exception as exc:  # report, do not fail the benchmark
            log.warning("could not count the FLOPs of %s: %s", name, exc)
            counts[f"{name}_tflop"] = None
            counts[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
    return counts


def _wan_counts(folder: Path, num_frames: int, height: int, width: int) -> dict[str, Callable[[], float]]:
    """Wan: one transformer call with the prompt's 512 tokens, the clip's decode shared over its
    frames (the VAE decodes a clip at once), and UMT5 on the prompt and the negative prompt."""
    meta = {"device": "meta"}

    def latents(vae: Any) -> torch.Tensor:
        config = vae.config
        frames = (num_frames - 1) // config.scale_factor_temporal + 1
        spatial = config.scale_factor_spatial
        return torch.empty(1, config.z_dim, frames, height // spatial, width // spatial, **meta)

    def transformer() -> float:
        model = _meta(diffusers.WanTransformer3DModel, folder, "transformer")
        sample = latents(_meta(diffusers.AutoencoderKLWan, folder, "vae"))
        text = torch.empty(1, WAN_TEXT_TOKENS, model.config.text_dim, **meta)
        return _count(lambda: model(sample, torch.tensor([500.0], **meta), text, return_dict=False))

    def decode() -> float:
        model = _meta(diffusers.AutoencoderKLWan, folder, "vae")
        return _count(lambda: model.decode(latents(model))) / num_frames

    def encode() -> float:
        model = _meta_transformers(transformers.UMT5EncoderModel, folder, "text_encoder")
        ids = torch.zeros(2, WAN_TEXT_TOKENS, dtype=torch.long, **meta)
        return _count(lambda: model(ids))

    return {"unet_evaluation": transformer, "decode_frame": decode, "encode": encode}


def _ltx_counts(folder: Path, num_frames: int, height: int, width: int) -> dict[str, Callable[[], float]]:
    """LTX-Video: one transformer call on the latent tokens with the prompt's MAX_SEQUENCE_LENGTH
    T5 tokens (the engine's), the clip's decode shared over its frames, and T5 on the prompt and the
    negative prompt."""
    from videogen.families.ltx import MAX_SEQUENCE_LENGTH

    meta = {"device": "meta"}

    def latent_shape(vae: Any) -> tuple[int, int, int]:
        frames = (num_frames - 1) // vae.temporal_compression_ratio + 1
        return frames, height // vae.spatial_compression_ratio, width // vae.spatial_compression_ratio

    def transformer() -> float:
        model = _meta(diffusers.LTXVideoTransformer3DModel, folder, "transformer")
        vae = _meta(diffusers.AutoencoderKLLTXVideo, folder, "vae")
        frames, h, w = latent_shape(vae)
        config = model.config
        tokens = (frames // config.patch_size_t) * (h // config.patch_size) * (w // config.patch_size)
        sample = torch.empty(1, tokens, config.in_channels, **meta)
        text = torch.empty(1, MAX_SEQUENCE_LENGTH, config.caption_channels, **meta)
        mask = torch.ones(1, MAX_SEQUENCE_LENGTH, dtype=torch.long, **meta)
        shape = {"num_frames": frames, "height": h, "width": w}
        return _count(
            lambda: model(sample, text, torch.tensor([500.0], **meta), mask, **shape, return_dict=False)
        )

    def decode() -> float:
        model = _meta(diffusers.AutoencoderKLLTXVideo, folder, "vae")
        latents = torch.empty(1, model.config.latent_channels, *latent_shape(model), **meta)
        timestep = torch.tensor([0.05], **meta) if model.config.timestep_conditioning else None
        return _count(lambda: model.decode(latents, timestep)) / num_frames

    def encode() -> float:
        model = _meta_transformers(transformers.T5EncoderModel, folder, "text_encoder")
        ids = torch.zeros(2, MAX_SEQUENCE_LENGTH, dtype=torch.long, **meta)
        return _count(lambda: model(ids))

    return {"unet_evaluation": transformer, "decode_frame": decode, "encode": encode}
