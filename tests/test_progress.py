"""The progress bar's steps, rate and time left, from the engines' progress events."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from videogen.cli import app
from videogen.sampling.progress import ProgressEvent, StepRate, steps_text


def _step(video: int, step: int, elapsed: float, total: int = 10) -> ProgressEvent:
    return ProgressEvent("denoise", video, 2, step, total, elapsed)


def test_the_rate_counts_steps_from_each_videos_first_step() -> None:
    rate = StepRate()
    assert rate(_step(0, 1, elapsed=30.0)) is None  # loading and encoding took 30 s: not a step's time
    assert rate(_step(0, 3, elapsed=31.0)) == 2.0
    assert rate(_step(1, 1, elapsed=40.0)) is None  # the next video starts again
    assert rate(_step(1, 2, elapsed=44.0)) == 0.25


def test_steps_text_shows_the_rate_both_ways_and_the_time_left() -> None:
    assert steps_text(_step(0, 1, 1.0), None) == "1/10"
    assert steps_text(_step(0, 4, 1.0), 2.0) == "4/10 2.00 it/s, 0:03 left"
    assert steps_text(_step(0, 4, 1.0), 0.01) == "4/10 100.0 s/it, 10:00 left"
    assert steps_text(_step(0, 10, 1.0), 2.0) == "10/10 2.00 it/s"


def test_the_cli_bar_shows_the_rate_and_never_an_unknown_total(tiny_unet3d, tmp_path) -> None:
    result = CliRunner().invoke(
        app,
        ["generate", "waves", "--model", str(tiny_unet3d), "--out", str(tmp_path), "--seed", "1"]
        + ["--num-frames", "2", "--height", "32", "--width", "32", "--steps", "3", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.stderr
    assert re.search(r" 3/3 \d+\.\d+ (it/s|s/it) ", result.stderr), result.stderr
    assert "/?" not in result.stderr
