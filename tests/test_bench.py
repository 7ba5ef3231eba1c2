"""``videogen bench`` end to end on tiny models: both sides run, interleaved, and the JSON has every field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from videogen.architectures import ARCHITECTURES
from videogen.bench.flops import count_flops
from videogen.bench.runner import ABLATIONS, FIGURES
from videogen.catalog import CATALOG
from videogen.cli import app

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
    assert report["max_abs_difference"] < 1e-4, "the same weights and seed give the same frames"
    assert report["flops"]["unet_evaluation_tflop"] > 0 and report["flops"]["encode_tflop"] > 0
    assert report["settings"]["num_frames"] == 2 and report["machine"]["libraries"]["torch"]


def test_bench_ablations_switch_each_speedup_alone(tiny_unet3d: Path) -> None:
    report = _bench("--model", str(tiny_unet3d), "--ablate")
    assert [run["name"] for run in report["runs"]] == ["videogen", *ABLATIONS, "videogen"]
    for name, change in ABLATIONS.items():
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


def test_every_catalog_model_has_a_full_size_architecture_with_the_published_cost() -> None:
    assert {spec.architecture for spec in CATALOG.values()} == set(ARCHITECTURES)


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
