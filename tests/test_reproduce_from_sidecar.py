"""A video's sidecar passed back as ``--config`` makes the same video (seed -1 included)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
from typer.testing import CliRunner

from videogen.cli import app

runner = CliRunner()
SMALL = ["--num-frames", "4", "--height", "32", "--width", "32", "--steps", "2", "--device", "cpu"]


def _frames(path: str) -> np.ndarray:
    with av.open(path) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def _generate(*args: str) -> dict:
    result = runner.invoke(app, ["generate", *args, "--json"])
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_a_sidecar_passed_as_config_reproduces_the_video(tiny_unet3d: Path, tmp_path: Path) -> None:
    model = ["--model", str(tiny_unet3d)]
    first = _generate("a panda", *model, "--seed", "-1", "--out", str(tmp_path / "a"), *SMALL)
    assert first["seed_was_random"]
    (video,) = first["videos"]
    again = _generate("--config", video["files"]["sidecar"], "--out", str(tmp_path / "b"))
    (copy,) = again["videos"]
    assert copy["seed"] == video["seed"] and not again["seed_was_random"]
    np.testing.assert_array_equal(_frames(copy["files"]["mp4"]), _frames(video["files"]["mp4"]))
