"""The command line end to end on a tiny model: real mp4 files decoded with PyAV."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from videogen.cli import app
from videogen.engines import EngineCache
from videogen.families.unet3d import UNet3DEngine
from videogen.media import to_uint8
from videogen.request import Request, resolve_request
from videogen.sampling.progress import Reporter

runner = CliRunner()
SMALL = ["--num-frames", "5", "--height", "48", "--width", "64", "--steps", "2", "--device", "cpu"]


def _generate(tiny_unet3d: Path, out: Path, *args: str) -> dict:
    result = runner.invoke(
        app,
        [
            "generate",
            "a panda eating bamboo",
            "--model",
            str(tiny_unet3d),
            "--out",
            str(out),
            "--json",
            *args,
        ],
    )
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_mp4_is_h264_yuv420p_with_the_requested_frames(tiny_unet3d, tmp_path) -> None:
    summary = _generate(tiny_unet3d, tmp_path, *SMALL, "--seed", "4", "--format", "mp4", "--format", "frames")
    (video,) = summary["videos"]
    with av.open(video["files"]["mp4"]) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    sidecar = json.loads(Path(video["files"]["sidecar"]).read_text())
    assert sidecar["seed"] == 4 and sidecar["request"]["num_frames"] == 5
    assert sidecar["model"]["family"] == "unet3d" and sidecar["dtype"] == "fp32"
    assert {"torch", "diffusers", "transformers"} <= set(sidecar["libraries"])
    assert sidecar["peak_memory_mb"]["rss"] > 0 and sidecar["timings"]["denoise_s"] > 0


def test_png_frames_equal_the_quantised_float_frames(tiny_unet3d, tmp_path) -> None:
    summary = _generate(tiny_unet3d, tmp_path, *SMALL, "--seed", "9", "--format", "frames")
    folder = Path(summary["videos"][0]["files"]["frames"])
    pngs = np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])
    request, _ = resolve_request(
        Request(
            prompt="a panda eating bamboo", model=str(tiny_unet3d), num_frames=5, height=48, width=64, steps=2
        )
    )
    engine = UNet3DEngine.load(tiny_unet3d, torch.device("cpu"), torch.float32, None)
    (video,) = engine.generate(request, [9], Reporter(None, None, 1))
    np.testing.assert_array_equal(pngs, to_uint8(video.frames))


def test_config_file_with_flags_taking_precedence(tiny_unet3d, tmp_path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {tiny_unet3d}\nsteps: 1\nseed: 1\nnum_frames: 3\nheight: 32\nwidth: 32\nfps: 12\n"
    )
    result = runner.invoke(
        app,
        [
            "generate",
            "waves at sunset",
            "--config",
            str(config),
            "--seed",
            "3",
            "--json",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    sidecar = json.loads(Path(json.loads(result.stdout)["videos"][0]["files"]["sidecar"]).read_text())
    assert sidecar["seed"] == 3
    assert (sidecar["request"]["steps"], sidecar["request"]["num_frames"], sidecar["fps"]) == (1, 3, 12.0)


def test_config_with_unknown_key_is_an_error(tmp_path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("prompt: waves\nframes: 8\n")
    result = runner.invoke(app, ["generate", "--config", str(config)])
    assert result.exit_code == 2
    assert "frames: 8 is not allowed; unknown field" in result.stderr


def test_random_seed_is_printed_and_batch_uses_seed_plus_k(tiny_unet3d, tmp_path) -> None:
    result = runner.invoke(
        app,
        [
            "generate",
            "waves",
            "--model",
            str(tiny_unet3d),
            "--out",
            str(tmp_path),
            "--json",
            "--num-videos",
            "2",
            *SMALL,
        ],
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["seed_was_random"]
    assert f"seed: {summary['seed']} (random" in result.stderr
    assert [v["seed"] for v in summary["videos"]] == [summary["seed"], summary["seed"] + 1]


def test_outputs_never_overwrite(tiny_unet3d, tmp_path) -> None:
    first = _generate(tiny_unet3d, tmp_path, *SMALL, "--seed", "5")["videos"][0]["files"]["mp4"]
    before = Path(first).read_bytes()
    second = _generate(tiny_unet3d, tmp_path, *SMALL, "--seed", "5")["videos"][0]["files"]["mp4"]
    assert first != second and Path(first).read_bytes() == before
    assert len(list(tmp_path.glob("*.mp4"))) == 2


def test_validation_error_has_no_stack_trace() -> None:
    result = runner.invoke(app, ["generate", "waves", "--num-frames", "0", "--height", "50"])
    assert result.exit_code == 2
    assert "num_frames: 0 is not allowed; must be >= 1" in result.stderr
    assert "height: 50 is not allowed; must be a positive multiple of 8" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_weights_offline_fail_at_once_with_the_ways_out(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_ENDPOINT": "http://127.0.0.1:9"}
    proc = subprocess.run(
        [sys.executable, "-m", "videogen", "generate", "a panda", "--model", "modelscope-t2v", "--seed", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "model 'modelscope-t2v' (ali-vilab/text-to-video-ms-1.7b, revision main) is not in" in proc.stderr
    assert "missing: model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/" in proc.stderr
    assert "videogen download modelscope-t2v" in proc.stderr and "--model /path/to/" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_models_lists_the_catalog_as_not_cached() -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert {"modelscope-t2v", "zeroscope-v2-576w", "zeroscope-v2-xl"} <= set(rows)
    assert rows["zeroscope-v2-576w"]["num_frames"] == 24 and rows["zeroscope-v2-576w"]["width"] == 576
    assert not any(row["cached"] for row in rows.values())


def test_download_without_network_fails_cleanly() -> None:
    result = runner.invoke(app, ["download", "modelscope-t2v"])
    assert result.exit_code == 2
    assert "download of ali-vilab/text-to-video-ms-1.7b@main failed" in result.stderr


def test_selftest_passes_offline() -> None:
    result = runner.invoke(app, ["selftest"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "unet3d" in result.stdout and "wan-t2v" in result.stdout and "ok" in result.stdout


def _refuse_loading(monkeypatch) -> None:
    """Make any model load fail the test: what is checked before the compute must not get there."""

    def load(*_args, **_kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(EngineCache, "get", load)


def test_an_out_that_is_a_file_fails_before_the_model_loads(tiny_unet3d, tmp_path, monkeypatch) -> None:
    _refuse_loading(monkeypatch)
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    result = runner.invoke(
        app, ["generate", "waves", "--model", str(tiny_unet3d), "--out", str(taken), *SMALL]
    )
    assert result.exit_code == 2, result.stderr
    assert f"error: out_dir: {str(taken)!r} is not allowed; it is a file; give a folder" in result.stderr
    assert taken.read_text() == "not a folder"


def test_an_out_that_cannot_be_created_fails_before_the_model_loads(
    tiny_unet3d, tmp_path, monkeypatch
) -> None:
    _refuse_loading(monkeypatch)
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "videos"
    result = runner.invoke(app, ["generate", "waves", "--model", str(tiny_unet3d), "--out", str(out), *SMALL])
    assert result.exit_code == 2, result.stderr
    assert (
        f"out_dir: {str(out)!r} is not allowed; a part of the path is a file; give a folder" in result.stderr
    )


def _serve(*args: str) -> subprocess.CompletedProcess:
    """``videogen serve`` that is expected to refuse to start."""
    command = [sys.executable, "-m", "videogen", "serve", "--no-ui", "--port", "9", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    (line,) = [line for line in proc.stderr.splitlines() if line.strip()]
    return line


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a folder no one may write in: Linux /sys")
def test_serve_refuses_a_data_dir_it_cannot_write_in_one_line() -> None:
    line = _one_error_line(_serve("--data-dir", "/sys/videogen-data"))
    assert line.startswith(
        "error: data_dir: '/sys/videogen-data' is not allowed; files cannot be written there ("
    )


def test_serve_refuses_a_database_that_does_not_answer_in_one_line(tmp_path) -> None:
    url = "postgresql+psycopg://videogen:secret@127.0.0.1:1/jobs"  # nothing listens on port 1
    line = _one_error_line(_serve("--data-dir", str(tmp_path), "--database-url", url))
    assert line.startswith(
        "error: database_url: cannot connect to postgresql+psycopg://videogen:***@127.0.0.1:1/jobs ("
    )
    assert "Connection refused" in line and "secret" not in line


def test_latents_get_the_same_permissions_as_the_videos(tiny_unet3d, tmp_path) -> None:
    before = os.umask(0o027)
    try:
        summary = _generate(
            tiny_unet3d, tmp_path, *SMALL, "--save-latents", "--format", "mp4", "--format", "gif"
        )
    finally:
        os.umask(before)
    files = summary["videos"][0]["files"]
    modes = {kind: oct(os.stat(files[kind]).st_mode & 0o777) for kind in ("mp4", "gif", "sidecar", "latents")}
    assert modes == dict.fromkeys(modes, oct(0o640))


def test_version() -> None:
    from videogen import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"videogen {__version__}"


def test_generate_help_shows_every_options_default() -> None:
    result = runner.invoke(app, ["generate", "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    blocks = re.split(r"\n│ (?=--)", result.stdout)[1:]  # one block per option, wrapped lines and all
    options = {block.split()[0]: " ".join(block.split()) for block in blocks}
    assert len(options) > 40
    assert [name for name, text in options.items() if "default" not in text and name != "--help"] == []
    assert "[default: (the model's)]" in options["--steps"]
    assert "[default: (random)]" in options["--seed"] and "[default: (mp4)]" in options["--format"]
    assert "[default: (off)]" in options["--save-latents"]


def test_models_fits_80_columns_when_piped_with_license_and_vram(monkeypatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # a pipe: rich renders 80 columns
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(line.strip() for line in lines)
    assert "\nsvd-xt-1.1 stabilityai/stable-video-diffusion-img2vid-xt-1-1@main\n" in re.sub(" +", " ", text)
    assert "license: cc-by-nc-4.0" in text and "license: stability-ai-community" in text
    assert re.search(r"^  modelscope-t2v .* 8 GB +no", result.stdout, re.MULTILINE)
