"""--compile: refused on the CPU in one line; where it runs (CUDA, or the benchmark on any device) it
works with the default speed-ups."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from videogen.cli import app
from videogen.engines import EngineCache, load_engine
from videogen.request import Request, resolve_request
from videogen.sampling.progress import Reporter
from videogen.speedups import DEFAULT_SPEEDUPS, Speedups

SMALL = ["--num-frames", "2", "--height", "32", "--width", "32", "--steps", "1"]


def test_compile_on_the_cpu_is_refused_in_one_line_before_loading(tiny_unet3d, tmp_path, monkeypatch) -> None:
    def load(*_args, **_kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(EngineCache, "get", load)
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "waves",
            "--model",
            str(tiny_unet3d),
            "--out",
            str(tmp_path),
            "--compile",
            "--device",
            "cpu",
        ]
        + SMALL,
    )
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: compile: True is not allowed; torch.compile is for CUDA devices; "
        "on the CPU compiling takes minutes, more than it saves"
    )


def _frames(folder: Path, speedups: Speedups) -> tuple[np.ndarray, dict]:
    engine = load_engine("unet3d", folder, torch.device("cpu"), torch.float32, None, speedups)
    request = resolve_request(
        Request(prompt="a fox", model=str(folder), num_frames=2, height=32, width=32, steps=2)
    )[0]
    (video,) = engine.generate(request, [1], Reporter(None, None, 1))
    return video.frames, engine.applied


@pytest.mark.slow  # Inductor compiles the tiny UNet for about 150 s on a 2-core CPU
def test_compiling_with_the_default_speedups_gives_the_same_frames(tiny_unet3d) -> None:
    expected, _ = _frames(tiny_unet3d, DEFAULT_SPEEDUPS)
    frames, applied = _frames(tiny_unet3d, replace(DEFAULT_SPEEDUPS, compile=True))
    assert applied["compile"] is True and "onednn_linear_layers" not in applied
    assert np.abs(frames - expected).max() < 1e-4
