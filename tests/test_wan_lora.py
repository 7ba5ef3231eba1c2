"""LoRA on the Wan engine: tiny LoRA files made here, in diffusers' keys and in the non-diffusers
``diffusion_model.*`` lora_down/lora_up/alpha format, against diffusers' WanPipeline with the same
file loaded by ``load_lora_weights`` and weighted by ``set_adapters``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import WanPipeline
from safetensors.torch import save_file
from test_wan_engine import SHAPE, TOLERANCE, _generate, _reference, _request

from videogen.errors import FieldError
from videogen.families.lora import file_sha256
from videogen.families.wan import WanEngine
from videogen.request import Request, resolve_request
from videogen.testing import build_tiny_model

RANK = 4
#: the tiny transformers' attention width (2 heads of 12)
WIDTH = 24
BLOCKS = 2


def _pair(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """lora_A (rank, in) and lora_B (out, rank), large enough to move the tiny model's output."""
    down = torch.randn(RANK, WIDTH, generator=generator) * 0.5
    up = torch.randn(WIDTH, RANK, generator=generator) * 0.5
    return down, up


def diffusers_lora(path: Path, prefix: str = "transformer", seed: int = 0, blocks: int = BLOCKS) -> Path:
    """A LoRA on self- and cross-attention q and v, in diffusers' (peft) keys under ``prefix``."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for block in range(blocks):
        for layer in ("attn1.to_q", "attn1.to_v", "attn2.to_q", "attn2.to_v"):
            down, up = _pair(generator)
            state[f"{prefix}.blocks.{block}.{layer}.lora_A.weight"] = down
            state[f"{prefix}.blocks.{block}.{layer}.lora_B.weight"] = up
    save_file(state, path)
    return path


def original_lora(path: Path, seed: int = 1) -> Path:
    """A LoRA in the format Wan's own trainers write: ``diffusion_model.blocks.N.self_attn.q`` with
    lora_down / lora_up and an alpha (which diffusers' converter folds into the weights)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for block in range(BLOCKS):
        for layer in ("self_attn.q", "self_attn.k", "cross_attn.o"):
            down, up = _pair(generator)
            state[f"diffusion_model.blocks.{block}.{layer}.lora_down.weight"] = down
            state[f"diffusion_model.blocks.{block}.{layer}.lora_up.weight"] = up
            state[f"diffusion_model.blocks.{block}.{layer}.alpha"] = torch.tensor(2.0)
    save_file(state, path)
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wan-lora-models")
    return {name: build_tiny_model(name, root / name) for name in ("wan-t2v", "wan-a14b")}


@pytest.fixture(scope="module")
def engines(folders) -> dict[str, WanEngine]:
    return {
        name: WanEngine.load(folder, torch.device("cpu"), torch.float32, None)
        for name, folder in folders.items()
    }


@pytest.fixture(scope="module")
def loras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loras")
    return {
        "diffusers": diffusers_lora(root / "style.safetensors"),
        "original": original_lora(root / "wan_original.safetensors"),
    }


def _run(engine: WanEngine, folder: Path, lora: list[str] | None = None, seed: int = 5):
    (video,) = _generate(engine, _request(folder, lora=lora, save_latents=True), [seed])
    return video


def _reference_with_lora(folder: Path, lora: Path, scale: float, seed: int = 5, both: bool = False):
    """diffusers' frames and latents with ``lora`` loaded into the pipeline at ``scale`` (and, with
    ``both``, loaded a second time into transformer_2)."""
    pipe = WanPipeline.from_pretrained(folder)
    pipe.load_lora_weights(lora.parent, weight_name=lora.name, adapter_name="one")
    names = ["one"]
    if both:
        pipe.load_lora_weights(
            lora.parent, weight_name=lora.name, adapter_name="two", load_into_transformer_2=True
        )
        names.append("two")
    pipe.set_adapters(names, [scale] * len(names))
    return _reference(pipe, "unipc", seed, **SHAPE)


def _difference(a, b) -> float:
    return float(
        np.abs(a.frames - b.frames).max() + (a.latents["latents"] - b.latents["latents"]).abs().max()
    )


@pytest.mark.parametrize("kind", ["diffusers", "original"])
def test_lora_matches_wan_pipeline_with_the_same_lora(folders, engines, loras, kind) -> None:
    """Both file formats: our frames and latents equal diffusers' with the LoRA at scale 0.7."""
    frames, latents = _reference_with_lora(folders["wan-t2v"], loras[kind], 0.7)
    ours = _run(engines["wan-t2v"], folders["wan-t2v"], [f"{loras[kind]}:0.7"])
    frame_gap = np.abs(ours.frames - frames).max()
    latent_gap = (ours.latents["latents"] - latents).abs().max()
    print(f"{kind}: frames {frame_gap:.2e}, latents {latent_gap:.2e}")
    assert frame_gap < TOLERANCE and latent_gap < TOLERANCE
    plain = _run(engines["wan-t2v"], folders["wan-t2v"])
    assert (plain.latents["latents"] - latents).abs().max() > 1e-2, "the LoRA should change the result"


def test_scale_zero_equals_no_lora_and_scale_is_recorded(folders, engines, loras) -> None:
    plain = _run(engines["wan-t2v"], folders["wan-t2v"])
    zero = _run(engines["wan-t2v"], folders["wan-t2v"], [f"{loras['diffusers']}:0"])
    assert _difference(plain, zero) < 1e-6
    assert plain.record["lora"] == []
    assert zero.record["lora"] == [
        {
            "source": str(loras["diffusers"]),
            "file": "style.safetensors",
            "sha256": file_sha256(loras["diffusers"]),
            "scale": 0.0,
            "experts": ["transformer"],
        }
    ]


def test_two_loras_each_at_its_scale(folders, engines, loras) -> None:
    one = _run(engines["wan-t2v"], folders["wan-t2v"], [f"{loras['diffusers']}:0.5"])
    both = _run(
        engines["wan-t2v"], folders["wan-t2v"], [f"{loras['diffusers']}:0.5", f"{loras['original']}:0"]
    )
    other = _run(
        engines["wan-t2v"], folders["wan-t2v"], [f"{loras['diffusers']}:0.5", str(loras["original"])]
    )
    assert _difference(one, both) < 1e-6
    assert _difference(one, other) > 1e-3
    assert [entry["scale"] for entry in other.record["lora"]] == [0.5, 1.0]


def test_a_job_without_lora_after_one_with_lora_runs_the_plain_model(folders, engines, loras) -> None:
    engine = engines["wan-t2v"]
    _run(engine, folders["wan-t2v"], [str(loras["original"])])
    after = _run(engine, folders["wan-t2v"])
    fresh_engine = WanEngine.load(folders["wan-t2v"], torch.device("cpu"), torch.float32, None)
    fresh = _run(fresh_engine, folders["wan-t2v"])
    assert np.array_equal(after.frames, fresh.frames)
    assert torch.equal(after.latents["latents"], fresh.latents["latents"])
    assert not hasattr(engine.transformer, "peft_config") or not engine.transformer.peft_config
    fused = [
        block.attn1.fused_projections
        for block in (engine.transformer.blocks[0], fresh_engine.transformer.blocks[0])
    ]
    assert fused[0] == fused[1], "the engine's projections are back as loaded after the LoRA"


def test_keys_that_match_nothing_are_refused_with_count_and_prefix(tmp_path, folders, engines) -> None:
    """A file for a bigger model (blocks the tiny one lacks) and one for another model's text encoder."""
    deeper = diffusers_lora(tmp_path / "deeper.safetensors", blocks=3)
    with pytest.raises(
        FieldError, match=r"^lora: .*8 of its 24 LoRA keys match no layer .*'transformer\.blocks\.2\.'"
    ):
        _run(engines["wan-t2v"], folders["wan-t2v"], [str(deeper)])
    other = diffusers_lora(tmp_path / "text.safetensors", prefix="text_encoder")
    with pytest.raises(FieldError, match=r"16 of its 16 LoRA keys .*'text_encoder\.blocks\.'"):
        _run(engines["wan-t2v"], folders["wan-t2v"], [str(other)])
    plain = _run(engines["wan-t2v"], folders["wan-t2v"])
    assert plain.record["lora"] == [], "a refused LoRA leaves nothing loaded"


def test_missing_file_or_uncached_repo_is_a_field_error(folders, engines, tmp_path) -> None:
    with pytest.raises(FieldError, match=r"^lora: .*local Hugging Face cache"):
        _run(engines["wan-t2v"], folders["wan-t2v"], [str(tmp_path / "nope.safetensors")])
    with pytest.raises(FieldError, match=r"^lora: .*local Hugging Face cache"):
        _run(engines["wan-t2v"], folders["wan-t2v"], ["someone/not-downloaded-lora:0.5"])


def test_a14b_loads_one_file_into_both_experts_as_diffusers_does(folders, engines, loras) -> None:
    frames, latents = _reference_with_lora(folders["wan-a14b"], loras["diffusers"], 0.8, both=True)
    ours = _run(engines["wan-a14b"], folders["wan-a14b"], [f"{loras['diffusers']}:0.8"])
    frame_gap = np.abs(ours.frames - frames).max()
    latent_gap = (ours.latents["latents"] - latents).abs().max()
    print(f"a14b: frames {frame_gap:.2e}, latents {latent_gap:.2e}")
    assert frame_gap < TOLERANCE and latent_gap < TOLERANCE
    assert ours.record["lora"][0]["experts"] == ["transformer", "transformer_2"]


def test_a14b_file_with_keys_for_each_expert(tmp_path, folders, engines) -> None:
    """``transformer.*`` keys go to the high-noise expert, ``transformer_2.*`` to the low-noise one."""
    high = diffusers_lora(tmp_path / "high.safetensors", seed=3)
    low = diffusers_lora(tmp_path / "low.safetensors", prefix="transformer_2", seed=4)
    combined = tmp_path / "both.safetensors"
    from safetensors.torch import load_file

    save_file({**load_file(high), **load_file(low)}, combined)
    ours = _run(engines["wan-a14b"], folders["wan-a14b"], [str(combined)])
    assert ours.record["lora"][0]["experts"] == ["transformer", "transformer_2"]
    low_only = _run(engines["wan-a14b"], folders["wan-a14b"], [str(low)])
    assert low_only.record["lora"][0]["experts"] == ["transformer_2"]
    plain = _run(engines["wan-a14b"], folders["wan-a14b"])
    assert _difference(low_only, plain) > 1e-3 and _difference(ours, low_only) > 1e-3


def test_lora_entries_are_checked_and_refused_off_wan() -> None:
    with pytest.raises(
        FieldError, match=r"^lora: .*modelscope-t2v does not use it \(only wan_t2v, .* models use it\)"
    ):
        resolve_request(Request(prompt="a cat", model="modelscope-t2v", lora=["style.safetensors"]))
    request, _ = resolve_request(
        Request(prompt="a cat", model="wan2.1-t2v-1.3b", lora=["style.safetensors:0.8"])
    )
    assert request.lora == ["style.safetensors:0.8"]


def test_the_ui_control_takes_one_lora_a_line_and_shows_them_back() -> None:
    from videogen.fields import field_info
    from videogen.server.ui.controls import OMIT, build_control

    control = build_control(field_info("lora"), None, True)
    assert control.entry == "lines"
    assert control.request_value(" style.safetensors:0.8\n\n  owner/repo \n") == [
        "style.safetensors:0.8",
        "owner/repo",
    ]
    assert control.request_value("  ") is OMIT
    assert control.control_value(["a.safetensors:0.5", "b"]) == "a.safetensors:0.5\nb"
