"""Stability's single-file SV3D checkpoints (sv3d_u, sv3d_p) to a diffusers-layout folder.

The checkpoints hold one ``DiffusionEngine`` state dict in Stability's sgm key layout
(configs/inference/sv3d_u.yaml and sv3d_p.yaml in Stability-AI/generative-models):

- ``model.diffusion_model.*``: the ``VideoUNet`` -> ``UNetSpatioTemporalConditionModel``. Its
  ``label_emb`` (the added conditioning vector) is 256 wide for sv3d_u (cond_aug) and 1280 for
  sv3d_p (cond_aug 256 + polar 512 + azimuth 512), which tells the variants apart.
- ``first_stage_model.decoder.*``: the first stage is an ``AutoencodingEngine`` whose encoder is
  ``torch.nn.Identity`` and whose decoder is the per-frame image ``Decoder`` (the public configs
  replaced SVD's temporal ``VideoDecoder``), applied without a post-quant conv.
- ``conditioner.embedders.N.encoder.*``: the KL autoencoder that encodes the conditioning frame;
  the sampler uses its ``encoder`` and ``quant_conv``.

So the VAE written here is an ``AutoencoderKL`` built from both: encoder and quant conv from the
conditioner, decoder from the first stage, ``use_post_quant_conv=False``. Keys the official sampler
loads but never uses are skipped: the OpenCLIP image embedder (the image encoder and feature
extractor come from an SVD-XT folder instead, as they are the same frozen ViT-H/14), the
conditioner autoencoder's decoder and post-quant conv, and a first stage's encoder, quant convs or
temporal decoder layers (sgm loads the image ``Decoder`` with ``strict=False``, dropping them).
Every other key must map onto the diffusers models exactly, or conversion stops with a
``UserError`` naming the keys.

The mapping rules follow the sgm module names (``VideoResBlock``: in_layers, emb_layers,
out_layers, skip_connection, time_stack, time_mixer; ``SpatialVideoTransformer``: norm, proj_in,
transformer_blocks, time_stack, time_pos_embed, time_mixer, proj_out; the LDM autoencoder's
down/mid/up blocks), as diffusers' scripts/convert_svd_to_diffusers.py reads them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import diffusers
import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
from safetensors import SafetensorError, safe_open

from videogen.errors import UserError

Variant = Literal["u", "p"]

SV3D_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 72,  # 576 / 8
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": [
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "DownBlockSpatioTemporal",
    ],
    "up_block_types": [
        "UpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
    ],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "num_attention_heads": [5, 10, 20, 20],  # num_head_channels 64
    "cross_attention_dim": 1024,
    "transformer_layers_per_block": 1,
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 256,  # set from the checkpoint: 256 (u) or 1280 (p)
    "num_frames": 21,
}
"""The diffusers config of sgm's VideoUNet as both SV3D configs set it up."""

SV3D_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],  # ch 128, ch_mult 1, 2, 4, 4
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 576,
    "scaling_factor": 0.18215,
}
"""The LDM KL-f8 autoencoder (ddconfig in the SV3D configs) as a diffusers AutoencoderKL."""

VECTOR_MULTIPLES: dict[int, Variant] = {1: "u", 5: "p"}
"""Added-conditioning width / addition_time_embed_dim -> variant (sv3d_p: 256 + 512 + 512)."""

UNET_PREFIX = "model.diffusion_model."
DECODER_PREFIX = "first_stage_model.decoder."
LABEL_EMB_KEY = UNET_PREFIX + "label_emb.0.0.weight"
CONDITIONER_PREFIX = "conditioner.embedders."

UNUSED_FIRST_STAGE = (
    "first_stage_model.encoder.",
    "first_stage_model.quant_conv.",
    "first_stage_model.post_quant_conv.",
)
TEMPORAL_DECODER_PARTS = frozenset(
    {"time_stack", "mix_factor", "time_mix_conv", "time_mix_block", "video_time_embed"}
)
"""Module names of sgm's VideoDecoder that its image Decoder lacks."""

SVD_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "v_prediction",
    "interpolation_type": "linear",
    "use_karras_sigmas": True,
    "sigma_min": 0.002,
    "sigma_max": 700.0,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "steps_offset": 1,
}
"""SVD's EDM setup (EDMDiscretization, sigma_max 700, v-scaling, c_noise = 0.25 ln sigma), which
the SV3D sampler shares, as diffusers' EulerDiscreteScheduler expresses it."""

COMPONENTS: dict[str, tuple[str, str]] = {
    "feature_extractor": ("transformers", "CLIPImageProcessor"),
    "image_encoder": ("transformers", "CLIPVisionModelWithProjection"),
    "scheduler": ("diffusers", "EulerDiscreteScheduler"),
    "unet": ("diffusers", "UNetSpatioTemporalConditionModel"),
    "vae": ("diffusers", "AutoencoderKL"),
}

# Sub-key renames inside one sgm module, longest sgm prefix first wins.
_RESNET_PARTS = {
    "in_layers.0": "spatial_res_block.norm1",
    "in_layers.2": "spatial_res_block.conv1",
    "emb_layers.1": "spatial_res_block.time_emb_proj",
    "out_layers.0": "spatial_res_block.norm2",
    "out_layers.3": "spatial_res_block.conv2",
    "skip_connection": "spatial_res_block.conv_shortcut",
    "time_stack.in_layers.0": "temporal_res_block.norm1",
    "time_stack.in_layers.2": "temporal_res_block.conv1",
    "time_stack.emb_layers.1": "temporal_res_block.time_emb_proj",
    "time_stack.out_layers.0": "temporal_res_block.norm2",
    "time_stack.out_layers.3": "temporal_res_block.conv2",
    "time_mixer.mix_factor": "time_mixer.mix_factor",
}
_TRANSFORMER_PARTS = {
    "norm": "norm",
    "proj_in": "proj_in",
    "proj_out": "proj_out",
    "transformer_blocks": "transformer_blocks",
    "time_stack": "temporal_transformer_blocks",
    "time_pos_embed.0": "time_pos_embed.linear_1",
    "time_pos_embed.2": "time_pos_embed.linear_2",
    "time_mixer.mix_factor": "time_mixer.mix_factor",
}
_LAYER_PARTS = {"weight": "weight", "bias": "bias"}
_VAE_RESNET_PARTS = {
    "norm1": "norm1",
    "conv1": "conv1",
    "norm2": "norm2",
    "conv2": "conv2",
    "nin_shortcut": "conv_shortcut",
}
_VAE_ATTENTION_PARTS = {
    "norm": "group_norm",
    "q": "to_q",
    "k": "to_k",
    "v": "to_v",
    "proj_out": "to_out.0",
}

Table = dict[str, tuple[str, dict[str, str]]]
"""sgm module prefix -> (diffusers module prefix, sub-key renames inside the module)."""


def convert_sv3d(
    checkpoint: Path,
    out_dir: Path,
    svd_xt_dir: Path,
    variant: Variant | None = None,
    *,
    unet_config: Mapping[str, Any] | None = None,
    vae_config: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``out_dir`` (a StableVideoDiffusionPipeline-layout folder) from an SV3D checkpoint.

    ``variant`` ("u" or "p") is read from the checkpoint when None; a given variant must match
    it. ``svd_xt_dir`` is an SVD-XT folder in diffusers layout that lends its image_encoder/ and
    feature_extractor/ (``loading.locate_weights`` finds the catalog's ``svd-xt``: the converter
    knows files, not the catalog or the cache).
    ``unet_config``/``vae_config`` default to the real SV3D architecture; other sizes (tests) pass
    their own. ``out_dir`` must not exist or be empty; it appears only once complete. Weights keep
    the checkpoint's dtype.
    """
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"out: {str(out_dir)!r} already exists and is not empty; choose a new folder")
    encoder_dir = _svd_xt_folder(svd_xt_dir)
    with _open_checkpoint(checkpoint) as weights:
        shapes = {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}  # noqa: SIM118
        unet_cfg = _unet_config(checkpoint, shapes, variant, unet_config or SV3D_UNET_CONFIG)
        vae_cfg = {**(vae_config or SV3D_VAE_CONFIG), "use_quant_conv": True, "use_post_quant_conv": False}
        with torch.device("meta"):  # structure only; the checkpoint's tensors fill it
            models = {
                "unet": UNetSpatioTemporalConditionModel(**_public(unet_cfg)),
                "vae": AutoencoderKL(**_public(vae_cfg)),
            }
        mappings = _map_keys(checkpoint, shapes, unet_table(unet_cfg), vae_table(vae_cfg))
        _check(checkpoint, shapes, models, mappings)
        staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            for name, model in models.items():
                _fill(model, mappings[name], weights)
                model.save_pretrained(staging / name)
            EulerDiscreteScheduler(**SVD_SCHEDULER_CONFIG).save_pretrained(staging / "scheduler")
            for name in ("image_encoder", "feature_extractor"):
                shutil.copytree(encoder_dir / name, staging / name)
            _write_model_index(staging)
            if out_dir.exists():
                out_dir.rmdir()
            os.replace(staging, out_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def detect_variant(label_emb_width: int, addition_time_embed_dim: int = 256) -> Variant | None:
    """The variant ("u" or "p") an added-conditioning width means, or None when it is neither."""
    multiple, remainder = divmod(label_emb_width, addition_time_embed_dim)
    return None if remainder else VECTOR_MULTIPLES.get(multiple)


def unet_table(config: Mapping[str, Any]) -> Table:
    """Where each sgm VideoUNet module lands in UNetSpatioTemporalConditionModel, for ``config``.

    sgm numbers its blocks flatly: input_blocks.0 is conv_in, then per level ``layers_per_block``
    (resnet, transformer) pairs and a downsampler except after the last level; output_blocks run
    per level over ``layers_per_block + 1`` pairs with the upsampler after the last pair.
    """
    levels, per_level = len(config["block_out_channels"]), config["layers_per_block"]
    table: Table = {
        "time_embed.0": ("time_embedding.linear_1", _LAYER_PARTS),
        "time_embed.2": ("time_embedding.linear_2", _LAYER_PARTS),
        "label_emb.0.0": ("add_embedding.linear_1", _LAYER_PARTS),
        "label_emb.0.2": ("add_embedding.linear_2", _LAYER_PARTS),
        "input_blocks.0.0": ("conv_in", _LAYER_PARTS),
        "middle_block.0": ("mid_block.resnets.0", _RESNET_PARTS),
        "middle_block.1": ("mid_block.attentions.0", _TRANSFORMER_PARTS),
        "middle_block.2": ("mid_block.resnets.1", _RESNET_PARTS),
        "out.0": ("conv_norm_out", _LAYER_PARTS),
        "out.2": ("conv_out", _LAYER_PARTS),
    }
    block = 1
    for level, kind in enumerate(config["down_block_types"]):
        down = f"down_blocks.{level}"
        for layer in range(per_level):
            table[f"input_blocks.{block}.0"] = (f"{down}.resnets.{layer}", _RESNET_PARTS)
            if "CrossAttn" in kind:
                table[f"input_blocks.{block}.1"] = (f"{down}.attentions.{layer}", _TRANSFORMER_PARTS)
            block += 1
        if level < levels - 1:
            table[f"input_blocks.{block}.0.op"] = (f"{down}.downsamplers.0.conv", _LAYER_PARTS)
            block += 1
    block = 0
    for level, kind in enumerate(config["up_block_types"]):
        up, attention = f"up_blocks.{level}", "CrossAttn" in kind
        for layer in range(per_level + 1):
            table[f"output_blocks.{block}.0"] = (f"{up}.resnets.{layer}", _RESNET_PARTS)
            if attention:
                table[f"output_blocks.{block}.1"] = (f"{up}.attentions.{layer}", _TRANSFORMER_PARTS)
            block += 1
        if level < levels - 1:
            upsampler = f"output_blocks.{block - 1}.{2 if attention else 1}.conv"
            table[upsampler] = (f"{up}.upsamplers.0.conv", _LAYER_PARTS)
    return table


def vae_table(config: Mapping[str, Any]) -> Table:
    """Where each LDM autoencoder module lands in AutoencoderKL (keys below encoder./decoder.).

    The LDM decoder numbers its ``up`` levels from the highest resolution, diffusers' ``up_blocks``
    from the lowest; the decoder has one resnet more per level than the encoder.
    """
    levels, per_level = len(config["block_out_channels"]), config["layers_per_block"]
    table: Table = {}
    for side in ("encoder", "decoder"):
        table[f"{side}.conv_in"] = (f"{side}.conv_in", _LAYER_PARTS)
        table[f"{side}.conv_out"] = (f"{side}.conv_out", _LAYER_PARTS)
        table[f"{side}.norm_out"] = (f"{side}.conv_norm_out", _LAYER_PARTS)
        table[f"{side}.mid.block_1"] = (f"{side}.mid_block.resnets.0", _VAE_RESNET_PARTS)
        table[f"{side}.mid.attn_1"] = (f"{side}.mid_block.attentions.0", _VAE_ATTENTION_PARTS)
        table[f"{side}.mid.block_2"] = (f"{side}.mid_block.resnets.1", _VAE_RESNET_PARTS)
    for level in range(levels):
        down, up = f"encoder.down_blocks.{level}", f"decoder.up_blocks.{levels - 1 - level}"
        for layer in range(per_level):
            table[f"encoder.down.{level}.block.{layer}"] = (f"{down}.resnets.{layer}", _VAE_RESNET_PARTS)
        for layer in range(per_level + 1):
            table[f"decoder.up.{level}.block.{layer}"] = (f"{up}.resnets.{layer}", _VAE_RESNET_PARTS)
        if level < levels - 1:
            table[f"encoder.down.{level}.downsample.conv"] = (f"{down}.downsamplers.0.conv", _LAYER_PARTS)
        if level > 0:
            table[f"decoder.up.{level}.upsample.conv"] = (f"{up}.upsamplers.0.conv", _LAYER_PARTS)
    table["quant_conv"] = ("quant_conv", _LAYER_PARTS)
    return table


def rename(key: str, table: Table) -> str | None:
    """The diffusers name of an sgm key (relative to its model), or None when no rule covers it."""
    module = _longest_prefix(key, table)
    if module is None:
        return None
    target, parts = table[module]
    rest = key[len(module) + 1 :]
    part = _longest_prefix(rest, parts)
    if part is None:
        return None
    return ".".join(filter(None, (target, parts[part], rest[len(part) + 1 :])))


def _longest_prefix(key: str, prefixes: Mapping[str, object]) -> str | None:
    """The longest of ``prefixes`` that is ``key`` itself or a dotted ancestor of it."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in prefixes:
            return candidate
    return None


def _map_keys(
    checkpoint: Path, shapes: Mapping[str, tuple[int, ...]], unet_rules: Table, vae_rules: Table
) -> dict[str, dict[str, str]]:
    """Per model, diffusers name -> checkpoint key; keys no rule covers go under "unknown"."""
    conditioner_ae = _conditioner_autoencoder(checkpoint, shapes)
    mappings: dict[str, dict[str, str]] = {"unet": {}, "vae": {}, "unknown": {}}
    for key in shapes:
        if _unused(key, conditioner_ae):
            continue
        if key.startswith(UNET_PREFIX):
            model, name = "unet", rename(key.removeprefix(UNET_PREFIX), unet_rules)
        elif key.startswith(DECODER_PREFIX):
            model, name = "vae", rename(key.removeprefix("first_stage_model."), vae_rules)
        elif key.startswith((f"{conditioner_ae}encoder.", f"{conditioner_ae}quant_conv.")):
            model, name = "vae", rename(key.removeprefix(conditioner_ae), vae_rules)
        else:
            model, name = "unknown", None
        if name is None:
            mappings["unknown"][key] = key
        else:
            mappings[model][name] = key
    return mappings


def _check(
    checkpoint: Path,
    shapes: Mapping[str, tuple[int, ...]],
    models: Mapping[str, torch.nn.Module],
    mappings: Mapping[str, Mapping[str, str]],
) -> None:
    """Stop unless every key found its weight and every weight its key, at the right shape."""
    problems = []
    unknown = list(mappings["unknown"])
    if unknown:
        problems.append(f"{len(unknown)} keys with no place in the diffusers models, e.g. {_few(unknown)}")
    for component, model in models.items():
        expected, mapping = model.state_dict(), mappings[component]
        missing = [name for name in expected if name not in mapping]
        if missing:
            problems.append(f"{len(missing)} {component} weights missing, e.g. {_few(missing)}")
        extra = [key for name, key in mapping.items() if name not in expected]
        if extra:
            problems.append(f"{len(extra)} keys with no {component} weight to fill, e.g. {_few(extra)}")
        wrong = [
            f"{key} {list(shapes[key])} (needs {list(expected[name].shape)})"
            for name, key in mapping.items()
            if name in expected and not _fits(shapes[key], tuple(expected[name].shape))
        ]
        if wrong:
            problems.append(f"{len(wrong)} {component} weights of the wrong shape, e.g. {_few(wrong)}")
    if problems:
        raise UserError(
            f"{checkpoint.name} does not look like an SV3D checkpoint (sv3d_u or sv3d_p from "
            "stabilityai/sv3d): " + "; ".join(problems)
        )


def _fits(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether a checkpoint tensor can take the diffusers shape.

    The LDM autoencoder's attention projections are 1x1 convolutions; diffusers' are linear.
    """
    return shape == target or (len(shape) == 4 and shape[2:] == (1, 1) and shape[:2] == target)


def _fill(model: torch.nn.Module, mapping: Mapping[str, str], weights: Any) -> None:
    """Give the (meta-device) model the checkpoint's tensors: every weight, nothing else."""
    shapes = {name: tensor.shape for name, tensor in model.state_dict().items()}
    state = {name: weights.get_tensor(key).reshape(shapes[name]) for name, key in mapping.items()}
    model.load_state_dict(state, strict=True, assign=True)


def _conditioner_autoencoder(checkpoint: Path, shapes: Mapping[str, tuple[int, ...]]) -> str:
    """Key prefix of the conditioner's KL autoencoder (the embedder with a quant_conv)."""
    for key in shapes:
        if key.startswith(CONDITIONER_PREFIX) and key.endswith(".encoder.quant_conv.weight"):
            return key.removesuffix("quant_conv.weight")
    raise UserError(
        f"{checkpoint.name} does not look like an SV3D checkpoint (sv3d_u or sv3d_p from stabilityai/sv3d): "
        "it has no conditioning-frame autoencoder (conditioner.embedders.N.encoder.quant_conv)"
    )


def _unused(key: str, conditioner_ae: str) -> bool:
    """Keys the official SV3D sampler loads but never uses (see the module docstring)."""
    if key.startswith(UNUSED_FIRST_STAGE):
        return True
    if key.startswith(DECODER_PREFIX) and TEMPORAL_DECODER_PARTS.intersection(key.split(".")):
        return True
    if key.startswith((f"{conditioner_ae}decoder.", f"{conditioner_ae}post_quant_conv.")):
        return True
    return key.startswith(CONDITIONER_PREFIX) and ".open_clip." in key


def _unet_config(
    checkpoint: Path,
    shapes: Mapping[str, tuple[int, ...]],
    variant: Variant | None,
    base: Mapping[str, Any],
) -> dict[str, Any]:
    """``base`` with the added-conditioning width the checkpoint's label_emb has."""
    if LABEL_EMB_KEY not in shapes:
        raise UserError(
            f"{checkpoint.name} does not look like an SV3D checkpoint (sv3d_u or sv3d_p from "
            f"stabilityai/sv3d): it has no {LABEL_EMB_KEY}"
        )
    width, unit = shapes[LABEL_EMB_KEY][1], base["addition_time_embed_dim"]
    found = detect_variant(width, unit)
    if found is None:
        raise UserError(
            f"{checkpoint.name} does not look like an SV3D checkpoint: its added conditioning is "
            f"{width} wide; sv3d_u has {unit}, sv3d_p {5 * unit}"
        )
    if variant is not None and variant != found:
        raise UserError(f"{checkpoint.name} is an sv3d_{found} checkpoint, not sv3d_{variant}")
    return {**base, "projection_class_embeddings_input_dim": width}


def _open_checkpoint(checkpoint: Path) -> Any:
    if not checkpoint.is_file():
        raise UserError(f"checkpoint not found: {checkpoint}")
    try:
        return safe_open(str(checkpoint), framework="pt")
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{checkpoint} is not a readable safetensors file ({exc})") from None


def _svd_xt_folder(svd_xt_dir: Path) -> Path:
    """The SVD-XT folder lending its image encoder, checked for the two components it lends."""
    folder = Path(svd_xt_dir)
    for needed in ("image_encoder/config.json", "feature_extractor/preprocessor_config.json"):
        if not (folder / needed).is_file():
            raise UserError(f"{folder} is not an SVD-XT folder in diffusers layout: it has no {needed}")
    return folder


def _write_model_index(folder: Path) -> None:
    index: dict[str, Any] = {
        "_class_name": "StableVideoDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
    }
    index.update({name: list(spec) for name, spec in sorted(COMPONENTS.items())})
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def _public(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config without diffusers' bookkeeping keys (``_class_name``, ``_diffusers_version``)."""
    return {key: value for key, value in config.items() if not key.startswith("_")}


def _few(items: list[str], count: int = 4) -> str:
    shown = ", ".join(items[:count])
    return shown + (f" and {len(items) - count} more" if len(items) > count else "")
