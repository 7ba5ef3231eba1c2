"""The progress bar's steps, rate and time left, and the latent previews, from the engines' events."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from videogen.cli import app
from videogen.generate import generate
from videogen.media.latents import read_latents
from videogen.request import Request
from videogen.sampling import progress
from videogen.sampling.preview import preview_jpeg
from videogen.sampling.progress import (
    DEFAULT_PREVIEW_EVERY,
    ProgressEvent,
    Reporter,
    StepRate,
    WithPreviews,
    steps_text,
)
from videogen.testing import build_tiny_model


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


def test_the_eta_counts_only_this_videos_denoising_steps(monkeypatch) -> None:
    """30 s of loading and a 10 s decode of the first video are no part of the step time."""
    clock = iter(
        [0.0, 0.0, 30.0, 31.0, 32.0, 34.0, 44.0, 46.0, 47.0]
    )  # the Reporter's start, then each event
    monkeypatch.setattr(progress, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    events: list[ProgressEvent] = []
    report = Reporter(events.append, None, 2)
    report("load")
    report("encode")
    for step in (1, 2, 3):  # at 31, 32 and 34 s
        report("denoise", 0, step, 10)
    report("decode", 0)  # at 44 s
    for step in (1, 2):  # at 46 and 47 s
        report("denoise", 1, step, 10)
    etas = [event.eta for event in events if event.stage == "denoise"]
    assert etas == [9.0, 8.0, 7 * 1.5, 9 * 2.0, 8 * 1.0]
    assert [event.eta for event in events if event.stage != "denoise"] == [None, None, None]
    assert ProgressEvent("denoise", 0, 1, 2, 10, 30.0).eta == 120.0  # made elsewhere: all the time


def test_the_cli_bar_shows_the_rate_and_never_an_unknown_total(tiny_unet3d, tmp_path) -> None:
    result = CliRunner().invoke(
        app,
        ["generate", "waves", "--model", str(tiny_unet3d), "--out", str(tmp_path), "--seed", "1"]
        + ["--num-frames", "2", "--height", "32", "--width", "32", "--steps", "3", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.stderr
    assert re.search(r" 3/3 \d+\.\d+ (it/s|s/it) ", result.stderr), result.stderr
    assert "/?" not in result.stderr


def _generate_with_previews(model: str, out: Path, every: int, **fields) -> tuple[list, torch.Tensor]:
    """Run a request on the CPU; return its denoise events and its final latents."""
    events: list[ProgressEvent] = []
    request = Request(
        model=model, out_dir=str(out), seed=3, steps=7, device="cpu", save_latents=True, **fields
    )
    result = generate(request, WithPreviews(events.append, every=every))
    tensors, _ = read_latents(result.videos[0].files["latents"])
    return [event for event in events if event.stage == "denoise"], tensors["latents"]


def test_unet3d_sends_a_preview_every_n_steps_and_at_the_last(tiny_unet3d, tmp_path) -> None:
    fields = {"prompt": "waves", "num_frames": 3, "height": 32, "width": 48}
    denoise, latents = _generate_with_previews(str(tiny_unet3d), tmp_path, 3, **fields)
    assert [event.step for event in denoise if event.preview is not None] == [3, 6, 7]
    assert [event.step for event in denoise] == list(range(1, 8))  # every step still reported
    assert denoise[-1].preview == preview_jpeg(latents)  # (1, 4, frames, h, w) as the engine keeps them
    assert Image.open(io.BytesIO(denoise[-1].preview)).size == (252, 168)  # 6x4 latents, x42


def test_svd_previews_its_latents_with_the_channels_first(tiny_svd, tmp_path) -> None:
    image = tmp_path / "image.png"
    Image.new("RGB", (64, 64), (200, 40, 40)).save(image)
    fields = {"image": str(image), "num_frames": 3, "height": 64, "width": 64, "watermark": False}
    denoise, latents = _generate_with_previews(str(tiny_svd), tmp_path, 5, **fields)
    assert [event.step for event in denoise if event.preview is not None] == [5, 7]
    assert latents.shape[:3] == (1, 3, 4)  # SVD keeps (1, frames, 4, h, w)
    assert denoise[-1].preview == preview_jpeg(latents.transpose(1, 2))


def test_wan_previews_its_16_channel_latents(tmp_path) -> None:
    model = build_tiny_model("wan-t2v", tmp_path / "tiny-wan")
    fields = {"prompt": "waves", "num_frames": 5, "height": 32, "width": 32}
    denoise, latents = _generate_with_previews(str(model), tmp_path, 5, **fields)
    assert [event.step for event in denoise if event.preview is not None] == [5, 7]
    assert latents.shape[:2] == (1, 16)
    assert denoise[-1].preview == preview_jpeg(latents)


def test_a_plain_callback_gets_no_previews_and_none_are_made(tiny_unet3d, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("videogen.sampling.preview.preview_jpeg", _never)
    events: list[ProgressEvent] = []
    request = Request(prompt="waves", model=str(tiny_unet3d), out_dir=str(tmp_path), steps=5, device="cpu")
    generate(request.model_copy(update={"num_frames": 2, "height": 32, "width": 32}), events.append)
    assert [event.step for event in events if event.stage == "denoise"] == [1, 2, 3, 4, 5]
    assert all(event.preview is None for event in events)


def test_previews_come_every_one_or_more_steps() -> None:
    with pytest.raises(ValueError, match="every: 0; previews come every 1 or more steps"):
        WithPreviews(print, every=0)
    assert Reporter(WithPreviews(print), None, 1).preview_every == DEFAULT_PREVIEW_EVERY == 5
    assert Reporter(print, None, 1).preview_every is None


def _never(*_: object) -> bytes:
    raise AssertionError("a preview was made for a callback that did not ask for one")
