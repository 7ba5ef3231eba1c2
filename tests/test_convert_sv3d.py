"""SV3D checkpoint conversion: a synthetic checkpoint in Stability's sgm key layout round-trips.

The synthetic checkpoint is made the other way round: tiny diffusers models with random weights,
renamed to sgm's names by the rules below. Those rules are written from sgm's module names
(VideoUNet's input_blocks/middle_block/output_blocks, VideoResBlock, SpatialVideoTransformer, the
LDM autoencoder), independently of the converter's tables, so a wrong table fails the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
from safetensors.torch import save_file

from videogen.convert import convert_sv3d
from videogen.convert.sv3d import SV3D_UNET_CONFIG, rename, unet_table
from videogen.errors import UserError
from videogen.testing import build_tiny_svd

LAYERS = 2  # layers_per_block of the tiny UNet
TIME_EMBED = 32  # addition_time_embed_dim of the tiny UNet
AE = "conditioner.embedders.1.encoder."

TINY_UNET = {
    "sample_size": 8,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": (
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "DownBlockSpatioTemporal",
    ),
    "up_block_types": (
        "UpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
    ),
    "block_out_channels": (32, 32, 64),
    "layers_per_block": LAYERS,
    "num_attention_heads": (2, 2, 4),
    "cross_attention_dim": 16,
    "addition_time_embed_dim": TIME_EMBED,
    "projection_class_embeddings_input_dim": TIME_EMBED,
    "num_frames": 21,
}
TINY_VAE = {
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "block_out_channels": (8, 16, 16),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "use_post_quant_conv": False,
}


# --- diffusers -> sgm names, written from sgm's layout ---------------------------------------

RESNET_RULES = [
    (r"spatial_res_block\.norm1", "in_layers.0"),
    (r"spatial_res_block\.conv1", "in_layers.2"),
    (r"spatial_res_block\.time_emb_proj", "emb_layers.1"),
    (r"spatial_res_block\.norm2", "out_layers.0"),
    (r"spatial_res_block\.conv2", "out_layers.3"),
    (r"spatial_res_block\.conv_shortcut", "skip_connection"),
    (r"temporal_res_block\.norm1", "time_stack.in_layers.0"),
    (r"temporal_res_block\.conv1", "time_stack.in_layers.2"),
    (r"temporal_res_block\.time_emb_proj", "time_stack.emb_layers.1"),
    (r"temporal_res_block\.norm2", "time_stack.out_layers.0"),
    (r"temporal_res_block\.conv2", "time_stack.out_layers.3"),
]
TRANSFORMER_RULES = [
    (r"temporal_transformer_blocks\.", "time_stack."),
    (r"time_pos_embed\.linear_1", "time_pos_embed.0"),
    (r"time_pos_embed\.linear_2", "time_pos_embed.2"),
]


def sgm_unet_name(name: str, config: dict) -> str:
    """sgm VideoUNet name of a UNetSpatioTemporalConditionModel weight."""
    per = config["layers_per_block"]
    fixed = {
        "conv_in": "input_blocks.0.0",
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "add_embedding.linear_1": "label_emb.0.0",
        "add_embedding.linear_2": "label_emb.0.2",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
        "mid_block.resnets.0": "middle_block.0",
        "mid_block.attentions.0": "middle_block.1",
        "mid_block.resnets.1": "middle_block.2",
    }
    for old, new in fixed.items():
        if name.startswith(old + "."):
            name = new + name[len(old) :]
            break
    else:
        name = _sgm_block(name, config, per)
    transformer = re.match(r"(input_blocks\.\d+\.1|output_blocks\.\d+\.1|middle_block\.1)\.", name)
    rules = TRANSFORMER_RULES if transformer else []
    for pattern, new in RESNET_RULES + rules:
        name = re.sub(pattern, new, name)
    return "model.diffusion_model." + name


def _sgm_block(name: str, config: dict, per: int) -> str:
    if match := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", name):
        level, kind, layer, rest = int(match[1]), match[2], int(match[3]), match[4]
        return f"input_blocks.{1 + level * (per + 1) + layer}.{0 if kind == 'resnets' else 1}.{rest}"
    if match := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", name):
        return f"input_blocks.{(int(match[1]) + 1) * (per + 1)}.0.op.{match[2]}"
    if match := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", name):
        level, kind, layer, rest = int(match[1]), match[2], int(match[3]), match[4]
        return f"output_blocks.{level * (per + 1) + layer}.{0 if kind == 'resnets' else 1}.{rest}"
    if match := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", name):
        level = int(match[1])
        slot = 2 if "CrossAttn" in config["up_block_types"][level] else 1
        return f"output_blocks.{level * (per + 1) + per}.{slot}.conv.{match[2]}"
    raise AssertionError(f"no sgm name for {name}")


def sgm_vae_name(name: str, levels: int) -> str:
    """sgm name of an AutoencoderKL weight: encoder from the conditioner, decoder from the first stage."""
    name = re.sub(r"down_blocks\.(\d+)\.resnets\.", r"down.\1.block.", name)
    name = re.sub(r"down_blocks\.(\d+)\.downsamplers\.0\.", r"down.\1.downsample.", name)

    def ldm(kind: str) -> Callable[[re.Match[str]], str]:
        return lambda match: f"up.{levels - 1 - int(match[1])}.{kind}."  # the LDM decoder counts from the top

    name = re.sub(r"up_blocks\.(\d+)\.resnets\.", ldm("block"), name)
    name = re.sub(r"up_blocks\.(\d+)\.upsamplers\.0\.", ldm("upsample"), name)
    for old, new in [
        ("mid_block.resnets.0", "mid.block_1"),
        ("mid_block.resnets.1", "mid.block_2"),
        ("mid_block.attentions.0.group_norm", "mid.attn_1.norm"),
        ("mid_block.attentions.0.to_q", "mid.attn_1.q"),
        ("mid_block.attentions.0.to_k", "mid.attn_1.k"),
        ("mid_block.attentions.0.to_v", "mid.attn_1.v"),
        ("mid_block.attentions.0.to_out.0", "mid.attn_1.proj_out"),
        ("conv_norm_out", "norm_out"),
        ("conv_shortcut", "nin_shortcut"),
    ]:
        name = name.replace(old, new)
    return ("first_stage_model." if name.startswith("decoder.") else AE) + name


def sgm_checkpoint(unet: torch.nn.Module, vae: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The two models' weights under sgm names, plus keys an SV3D file has that the converter skips."""
    state = {sgm_unet_name(k, TINY_UNET): v for k, v in unet.state_dict().items()}
    levels = len(TINY_VAE["block_out_channels"])
    for name, tensor in vae.state_dict().items():
        if re.search(r"attentions\.0\.to_.*weight", name):
            tensor = tensor[:, :, None, None]  # the LDM autoencoder's attention is 1x1 convolutions
        state[sgm_vae_name(name, levels)] = tensor
    state["conditioner.embedders.0.open_clip.model.visual.proj"] = torch.randn(16, 8)
    state[AE + "decoder.conv_in.weight"] = torch.randn(16, 4, 3, 3)
    state[AE + "post_quant_conv.weight"] = torch.randn(4, 4, 1, 1)
    state["first_stage_model.decoder.mid.block_1.mix_factor"] = torch.tensor([0.5])  # a VideoDecoder's
    return {key: tensor.contiguous() for key, tensor in state.items()}


@pytest.fixture(scope="module")
def svd_xt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_svd(tmp_path_factory.mktemp("svd") / "svd-xt")


def tiny_models(vector_width: int) -> tuple[UNetSpatioTemporalConditionModel, AutoencoderKL]:
    torch.manual_seed(0)
    config = {**TINY_UNET, "projection_class_embeddings_input_dim": vector_width}
    unet = UNetSpatioTemporalConditionModel(**config)
    for parameter in unet.parameters():  # mix factors and norms start constant; make every weight unique
        parameter.data.normal_()
    return unet, AutoencoderKL(**TINY_VAE)


def assert_same_weights(loaded: torch.nn.Module, original: torch.nn.Module) -> None:
    got, expected = loaded.state_dict(), original.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[name], expected[name]) for name in expected)


def write_checkpoint(path: Path, state: dict[str, torch.Tensor]) -> Path:
    save_file(state, str(path))
    return path


def convert(checkpoint: Path, out: Path, svd_xt: Path, variant: str | None = None) -> Path:
    return convert_sv3d(checkpoint, out, svd_xt, variant, unet_config=TINY_UNET, vae_config=TINY_VAE)


@pytest.mark.parametrize(("vector_width", "variant"), [(TIME_EMBED, "u"), (5 * TIME_EMBED, "p")])
def test_round_trip(tmp_path: Path, svd_xt: Path, vector_width: int, variant: str) -> None:
    unet, vae = tiny_models(vector_width)
    checkpoint = write_checkpoint(tmp_path / f"sv3d_{variant}.safetensors", sgm_checkpoint(unet, vae))
    out = convert(checkpoint, tmp_path / "out", svd_xt)

    loaded = UNetSpatioTemporalConditionModel.from_pretrained(out / "unet")
    assert loaded.config.projection_class_embeddings_input_dim == vector_width
    assert loaded.config.num_frames == 21
    assert_same_weights(loaded, unet)
    loaded_vae = AutoencoderKL.from_pretrained(out / "vae")
    assert loaded_vae.config.use_post_quant_conv is False
    assert_same_weights(loaded_vae, vae)

    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "StableVideoDiffusionPipeline"
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    assert index["unet"] == ["diffusers", "UNetSpatioTemporalConditionModel"]
    scheduler = EulerDiscreteScheduler.from_pretrained(out / "scheduler")
    assert scheduler.config.prediction_type == "v_prediction" and scheduler.config.sigma_max == 700.0
    for name in ("image_encoder/config.json", "feature_extractor/preprocessor_config.json"):
        assert (out / name).read_bytes() == (svd_xt / name).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([checkpoint.name, "out"])


def test_real_sv3d_config_maps_every_unet_weight() -> None:
    """At full size (meta device, no weights): sgm names of every weight map back, upsamplers included."""
    config = {**SV3D_UNET_CONFIG, "projection_class_embeddings_input_dim": 1280}
    with torch.device("meta"):
        names = list(UNetSpatioTemporalConditionModel(**config).state_dict())
    table = unet_table(config)
    prefix = "model.diffusion_model."
    assert all(rename(sgm_unet_name(name, config).removeprefix(prefix), table) == name for name in names)
    upsampler = sgm_unet_name("up_blocks.1.upsamplers.0.conv.weight", config)
    assert upsampler == prefix + "output_blocks.5.2.conv.weight"  # after a transformer: slot 2


@pytest.fixture(scope="module")
def u_state() -> dict[str, torch.Tensor]:
    return sgm_checkpoint(*tiny_models(TIME_EMBED))


def test_renamed_key_is_named(tmp_path: Path, svd_xt: Path, u_state: dict[str, torch.Tensor]) -> None:
    state = dict(u_state)
    state["model.diffusion_model.input_blocks.1.0.in_layerz.0.weight"] = state.pop(
        "model.diffusion_model.input_blocks.1.0.in_layers.0.weight"
    )
    checkpoint = write_checkpoint(tmp_path / "renamed.safetensors", state)
    with pytest.raises(UserError) as caught:
        convert(checkpoint, tmp_path / "out", svd_xt)
    message = str(caught.value)
    assert "renamed.safetensors does not look like an SV3D checkpoint" in message
    assert "in_layerz" in message and "down_blocks.0.resnets.0.spatial_res_block.norm1.weight" in message
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["renamed.safetensors"]


def test_missing_key_is_named(tmp_path: Path, svd_xt: Path, u_state: dict[str, torch.Tensor]) -> None:
    state = {k: v for k, v in u_state.items() if k != "first_stage_model.decoder.up.0.block.1.conv2.bias"}
    checkpoint = write_checkpoint(tmp_path / "missing.safetensors", state)
    missing = r"1 vae weights missing, e\.g\. decoder\.up_blocks\.2\.resnets\.1\.conv2\.bias"
    with pytest.raises(UserError, match=missing):
        convert(checkpoint, tmp_path / "out", svd_xt)


def test_variant_detection(tmp_path: Path, svd_xt: Path, u_state: dict[str, torch.Tensor]) -> None:
    checkpoint = write_checkpoint(tmp_path / "sv3d_u.safetensors", u_state)
    with pytest.raises(UserError, match="is an sv3d_u checkpoint, not sv3d_p"):
        convert(checkpoint, tmp_path / "out", svd_xt, variant="p")
    svd_like = sgm_checkpoint(*tiny_models(3 * TIME_EMBED))  # fps, motion, noise aug: SVD, not SV3D
    with pytest.raises(UserError, match=f"added conditioning is {3 * TIME_EMBED} wide"):
        convert(write_checkpoint(tmp_path / "svd.safetensors", svd_like), tmp_path / "out", svd_xt)


def test_refuses_bad_inputs(tmp_path: Path, svd_xt: Path) -> None:
    (tmp_path / "garbage.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="not a readable safetensors file"):
        convert(tmp_path / "garbage.safetensors", tmp_path / "out", svd_xt)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(UserError, match="already exists"):
        convert(tmp_path / "garbage.safetensors", tmp_path / "taken", svd_xt)
    with pytest.raises(UserError, match="not an SVD-XT folder"):
        convert(tmp_path / "garbage.safetensors", tmp_path / "out", tmp_path)
