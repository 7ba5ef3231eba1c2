"""``videogen bench`` end to end on tiny models: both sides run, interleaved, and the JSON has every field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers
from typer.testing import CliRunner

from videogen.architectures import (
    ARCHITECTURES,
    LTX_VIDEO_TRANSFORMER,
    LTX_VIDEO_VAE,
    T5_XXL_ENCODER,
    UMT5_XXL_ENCODER,
    WAN21_1_3B_TRANSFORMER,
    WAN21_VAE,
    Architecture,
)
from videogen.bench.flops import count_flops
from videogen.bench.random_weights import write_random_model
from videogen.bench.runner import (
    ABLATIONS,
    ENVIRONMENT_ABLATIONS,
    FAMILIES_OF_ABLATION,
    FIGURES,
    BenchOptions,
    run_bench,
)
from videogen.catalog import CATALOG
from videogen.cli import app
from videogen.testing import build_tiny_model

runner = CliRunner()
TINY = ["--num-frames", "2", "--height", "64", "--width", "64", "--steps", "2", "--device", "cpu", "--json"]
RUN_FIELDS = set(
    [
        "name",
        "side",
        "speedups",
        "load_s",
        "encode_s",
        "unet_s",
        "unet_calls",
        "unet_items",
        "unet_step_s",
        "decode_s",
        "generate_s",
        "total_s",
        "peak_rss_mb",
        "peak_vram_mb",
        "record",
    ]
)


def _bench(*args: str) -> dict:
    result = runner.invoke(app, ["bench", *TINY, *args])  # later options win
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("family", ["unet3d", "svd"])
def test_bench_against_diffusers_reports_every_field(family: str, tiny_unet3d: Path, tiny_svd: Path) -> None:
    folder = tiny_unet3d if family == "unet3d" else tiny_svd
    report = _bench("--model", str(folder), "--vs-diffusers", "--repeats", "2")
    assert [run["name"] for run in report["runs"]] == ["videogen", "diffusers", "diffusers", "videogen"]
    # the stock side runs with torch's default allocation
    assert [run["huge_pages"] for run in report["runs"]] == [True, False, False, True]
    for run in report["runs"]:
        assert set(run) >= RUN_FIELDS, RUN_FIELDS - set(run)
        assert run["unet_calls"] == 2 and run["unet_items"] == 4  # 2 guided steps
        assert run["total_s"] >= run["generate_s"] > run["unet_s"] > 0 and run["peak_rss_mb"] > 100
        assert run["decode_s"] > 0 and run["encode_s"] > 0
    for side in ("videogen", "diffusers"):
        summary = report["summary"][side]
        assert set(FIGURES) <= set(summary) and summary["unet_evaluations"] == 4
        assert summary["unet_tflops"] > 0 and summary["decode_tflops"] > 0
    assert set(FIGURES) <= set(report["ratios"]) and report["ratios"]["unet_evaluations"] == 1
    assert report["ratios"]["total_s"] > 0
    low, middle, high = report["ratio_spread"]["total_s"]  # per-round ratios: round k pairs the k-th runs
    runs = report["runs"]  # videogen, diffusers, then diffusers, videogen
    rounds = [(runs[0]["total_s"], runs[1]["total_s"]), (runs[3]["total_s"], runs[2]["total_s"])]
    assert [low, high] == sorted(mine / theirs for mine, theirs in rounds) and low <= middle <= high
    assert report["summary"]["videogen"]["spread"]["total_s"][0] <= report["summary"]["videogen"]["total_s"]
    assert report["max_abs_difference"] < 1e-4, "the same weights and seed give the same frames"
    assert report["flops"]["unet_evaluation_tflop"] > 0 and report["flops"]["encode_tflop"] > 0
    assert report["settings"]["num_frames"] == 2 and report["machine"]["libraries"]["torch"]


def test_bench_ablations_switch_each_speedup_alone(tiny_unet3d: Path) -> None:
    report = _bench("--model", str(tiny_unet3d), "--ablate")
    unet3d_ablations = {
        name: change
        for name, change in ABLATIONS.items()
        if "unet3d" in FAMILIES_OF_ABLATION.get(name, ("unet3d",))
    }
    names = ["videogen", *unet3d_ablations, *ENVIRONMENT_ABLATIONS, "videogen"]
    assert [run["name"] for run in report["runs"]] == names
    assert set(report["ablations"]) == set(names[1:-1])  # the video VAEs' ablation is theirs only
    assert [run["huge_pages"] for run in report["runs"]] == [name != "without huge_pages" for name in names]
    for name, change in unet3d_ablations.items():
        run = next(run for run in report["runs"] if run["name"] == name)
        assert all(run["speedups"][key] == value for key, value in change.items())
        assert report["ablations"][name]["max_abs_difference"] < 1e-4
        assert report["ablations"][name]["total_s"] > 0
    assert report["ratios"] is None


def test_bench_of_a_preset_counts_its_evaluations(tiny_unet3d: Path) -> None:
    report = _bench("--model", str(tiny_unet3d), "--preset", "fast", "--steps", "6")
    record = report["runs"][0]["record"]
    assert report["settings"]["cache_interval"] == 3 and report["settings"]["guidance_end"] == 0.5
    assert (record["unet_evaluations"], record["unet_shallow_evaluations"]) == (3, 6)  # 2+1 full; 2+2+1+1


def test_bench_errors_are_clean(tiny_unet3d: Path) -> None:
    result = runner.invoke(app, ["bench", "--model", str(tiny_unet3d), "--random-weights", *TINY])
    assert result.exit_code == 2 and "random-weights" in result.stderr and "Traceback" not in result.stderr


#: catalog models `videogen bench --random-weights` cannot build yet (it says so, naming the field)
NO_ARCHITECTURE_YET = {
    "wan2.1-t2v-14b", "wan2.1-i2v-14b-480p", "wan2.1-i2v-14b-720p", "wan2.1-flf2v-14b", "wan2.2-t2v-a14b",
    "wan2.2-i2v-a14b", "ltx-video-0.9.5", "ltx-video-distilled",
}  # fmt: skip


def test_every_catalog_model_has_a_full_size_architecture_with_the_published_cost() -> None:
    benched = {spec.architecture for spec in CATALOG.values() if spec.id not in NO_ARCHITECTURE_YET}
    assert benched == set(ARCHITECTURES)
    assert all(CATALOG[model].architecture is None for model in NO_ARCHITECTURE_YET)


@pytest.mark.parametrize(("folder_family", "shape", "tflop"), [("unet3d", (16, 256, 256), 4.9)])
def test_flop_count_of_the_full_size_unet_matches_the_design(tmp_path, folder_family, shape, tflop) -> None:
    """Counted on the meta device from configs alone: no weights are built."""
    from videogen.architectures import MODELSCOPE_UNET

    unet = tmp_path / "unet"
    unet.mkdir()
    (unet / "config.json").write_text(json.dumps({"_class_name": "UNet3DConditionModel", **MODELSCOPE_UNET}))
    counts = count_flops(tmp_path, folder_family, *shape)
    assert counts["unet_evaluation_tflop"] == pytest.approx(tflop, rel=0.02)
    assert counts["decode_frame_tflop"] is None and "decode_frame_error" in counts  # no VAE config here


#: a Wan 2.1 architecture at the tiny test models' size, written the way the full-size ones are
TINY_WAN = Architecture(
    "tiny-wan",
    "wan",
    {**WAN21_1_3B_TRANSFORMER, "num_attention_heads": 2, "attention_head_dim": 12, "ffn_dim": 32,
     "num_layers": 2, "text_dim": 32, "rope_max_seq_len": 32},
    "AutoencoderKLWan",
    {**WAN21_VAE, "base_dim": 3, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1},
    {**UMT5_XXL_ENCODER, "d_model": 32, "d_ff": 37, "d_kv": 8, "num_heads": 4, "num_layers": 2},
    {"flow_shift": 3.0},
    {"boundary_ratio": None, "expand_timesteps": False},
)  # fmt: skip


def test_bench_of_random_wan_weights_against_wan_pipeline(tmp_path) -> None:
    folder = tmp_path / "tiny-wan"
    write_random_model(TINY_WAN, folder, seed=0)
    shape = ["--num-frames", "5", "--steps", "3"]
    report = _bench("--model", str(folder), "--vs-diffusers", *shape)
    assert [run["name"] for run in report["runs"]] == ["videogen", "diffusers"]
    for run in report["runs"]:
        assert run["unet_calls"] == 6 and run["unet_items"] == 6  # 3 guided steps, one call per branch
        assert run["decode_s"] > 0 and run["encode_s"] > 0 and run["unet_s"] > 0
    assert report["max_abs_difference"] < 1e-4, "the same weights and seed give the same frames"
    assert report["ratios"]["unet_evaluations"] == 1
    assert report["flops"]["unet_evaluation_tflop"] > 0 and report["flops"]["decode_frame_tflop"] > 0
    assert report["flops"]["encode_tflop"] > 0 and report["summary"]["videogen"]["unet_tflops"] > 0
    cached = _bench("--model", str(folder), "--preset", "fast", *shape)
    record = cached["runs"][0]["record"]
    assert cached["settings"]["cache_threshold"] == 0.1 and cached["settings"]["steps"] == 3
    assert record["transformer_evaluations"] + record["transformer_skipped_evaluations"] == 6


def _write_configs(folder: Path, arch: Architecture, transformer_class: str) -> None:
    """The transformer's and the VAE's config.json only: enough to count FLOPs on the meta device."""
    for sub, cls, config in (
        ("transformer", transformer_class, arch.unet),
        ("vae", arch.vae_class, arch.vae),
    ):
        (folder / sub).mkdir()
        (folder / sub / "config.json").write_text(json.dumps({"_class_name": cls, **config}))


@pytest.mark.parametrize(("name", "shape", "tflop"), [("wan2.1-t2v-1.3b", (17, 240, 416), 5.92)])
def test_flop_count_of_full_size_wan(tmp_path, name, shape, tflop) -> None:
    _write_configs(tmp_path, ARCHITECTURES[name], "WanTransformer3DModel")
    counts = count_flops(tmp_path, "wan", *shape)
    # 5 x 15 x 26 = 1950 tokens: about 2 FLOP per token per weight of the blocks (the cross-attention's
    # key/value projections run on the 512 text tokens instead), plus attention itself
    assert counts["unet_evaluation_tflop"] == pytest.approx(tflop, rel=0.02)
    assert counts["decode_frame_tflop"] > 0


#: LTX-Video at the tiny test models' size (testing/_ltx.py), written the way the 2B is; its VAE decodes
#: at a timestep (0.9.1's), so the stock side's decode_timestep and decode noise are compared too
TINY_LTX = Architecture(
    "tiny-ltx",
    "ltx",
    {**LTX_VIDEO_TRANSFORMER, "in_channels": 8, "out_channels": 8, "num_attention_heads": 2,
     "attention_head_dim": 8, "cross_attention_dim": 16, "num_layers": 2, "caption_channels": 32},
    "AutoencoderKLLTXVideo",
    {**LTX_VIDEO_VAE, "latent_channels": 8, "block_out_channels": [8] * 4,
     "decoder_block_out_channels": [8] * 4, "layers_per_block": [1] * 5, "decoder_layers_per_block": [1] * 5,
     "timestep_conditioning": True},
    {**T5_XXL_ENCODER, "d_model": 32, "d_ff": 37, "d_kv": 8, "num_heads": 4, "num_layers": 2,
     "relative_attention_num_buckets": 8},
    {"dynamic": True},
)  # fmt: skip


def test_bench_of_random_ltx_weights_against_ltx_pipeline(tmp_path) -> None:
    folder = tmp_path / "tiny-ltx"
    write_random_model(TINY_LTX, folder, seed=0)
    shape = {"num_frames": 9, "height": 64, "width": 64, "steps": 3, "device": "cpu"}
    options = BenchOptions(str(folder), fields={**shape, "guidance_rescale": 0.7}, vs_diffusers=True)
    report = run_bench(options)
    assert [run["name"] for run in report["runs"]] == ["videogen", "diffusers"]
    for run in report["runs"]:
        assert run["unet_calls"] == 3 and run["unet_items"] == 6  # 3 guided steps, both prompts in one call
        assert run["decode_s"] > 0 and run["encode_s"] > 0 and run["unet_s"] > 0
    record = report["runs"][0]["record"]
    assert record["pipeline"] == "LTXPipeline"
    assert record["decode_timestep"] == pytest.approx(0.05)  # a local 0.9.1+ folder's default
    assert report["max_abs_difference"] < 1e-4, "the same weights, settings and seed give the same frames"
    assert report["ratios"]["unet_evaluations"] == 1
    assert report["flops"]["unet_evaluation_tflop"] > 0 and report["flops"]["decode_frame_tflop"] > 0
    assert report["flops"]["encode_tflop"] > 0 and report["summary"]["diffusers"]["unet_tflops"] > 0


def test_bench_of_a_custom_ltx_schedule_against_ltx_condition_pipeline(tmp_path) -> None:
    """Timesteps of one's own: the engine follows LTXConditionPipeline, and so does the stock side
    (LTXPipeline cannot take them); the tiny 0.9.5 folder, whose scheduler does not shift."""
    folder = build_tiny_model("ltx-095", tmp_path / "ltx-095")
    shape = {"num_frames": 9, "height": 64, "width": 64, "steps": 3, "device": "cpu"}
    timesteps = [1000.0, 900.0, 500.0]
    report = run_bench(BenchOptions(str(folder), fields={**shape, "timesteps": timesteps}, vs_diffusers=True))
    record = report["runs"][0]["record"]
    assert record["pipeline"] == "LTXConditionPipeline" and record["timesteps"] == timesteps
    assert [run["unet_calls"] for run in report["runs"]] == [3, 3]
    assert report["max_abs_difference"] < 1e-4


def test_flop_count_of_full_size_ltx_video(tmp_path) -> None:
    arch = ARCHITECTURES["ltx-video"]
    _write_configs(tmp_path, arch, "LTXVideoTransformer3DModel")
    without_encoder = count_flops(tmp_path, "ltx", 17, 256, 384)
    assert without_encoder["encode_tflop"] is None and "encode_error" in without_encoder  # no T5 config
    transformers.T5Config(**arch.encoder).save_pretrained(tmp_path / "text_encoder")
    counts = count_flops(tmp_path, "ltx", 17, 256, 384)
    # 3 x 8 x 12 = 288 tokens through 1.9B weights of the blocks, about 2 FLOP per token per weight; the
    # cross-attention's keys and values and the caption projection run on the 256 T5 tokens
    assert counts["unet_evaluation_tflop"] == pytest.approx(1.11, rel=0.02)
    assert counts["decode_frame_tflop"] == pytest.approx(0.090, rel=0.02)
    # T5-XXL's 4.6B weights without the embedding, on the prompt and the negative prompt's 256 tokens each
    assert counts["encode_tflop"] == pytest.approx(4.79, rel=0.02)
