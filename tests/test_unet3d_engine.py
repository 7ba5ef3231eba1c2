"""The UNet3D engine against diffusers' reference TextToVideoSDPipeline on tiny random weights."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from diffusers import TextToVideoSDPipeline

from videogen.errors import Cancelled
from videogen.families.unet3d import UNet3DEngine
from videogen.request import Request, resolve_request
from videogen.sampling.progress import ProgressEvent, Reporter

SHAPE = {"num_frames": 4, "height": 64, "width": 64}


@pytest.fixture(scope="module")
def engine(tiny_unet3d) -> UNet3DEngine:
    return UNet3DEngine.load(tiny_unet3d, torch.device("cpu"), torch.float32, None)


def _request(tiny_unet3d, **fields) -> Request:
    base = {"prompt": "a panda eating bamboo on a rock", "model": str(tiny_unet3d), "steps": 3, **SHAPE}
    return resolve_request(Request(**{**base, **fields}))[0]


def _run(engine: UNet3DEngine, request: Request, seeds: list[int], **reporter) -> list[np.ndarray]:
    report = Reporter(reporter.get("callback"), reporter.get("cancel"), len(seeds))
    return [video.frames for video in engine.generate(request, seeds, report)]


@pytest.mark.parametrize(("guidance", "negative"), [(7.5, "blurry, low quality"), (1.0, None)])
def test_ddim_matches_the_reference_pipeline(engine, tiny_unet3d, guidance, negative) -> None:
    reference = TextToVideoSDPipeline.from_pretrained(tiny_unet3d)
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        "a panda eating bamboo on a rock",
        negative_prompt=negative,
        num_inference_steps=3,
        guidance_scale=guidance,
        generator=torch.Generator("cpu").manual_seed(7),
        output_type="np",
        **SHAPE,
    ).frames[0]
    request = _request(tiny_unet3d, guidance=guidance, negative_prompt=negative, decode_chunk_size=3)
    (frames,) = _run(engine, request, [7])
    assert frames.shape == expected.shape == (4, 64, 64, 3)
    assert np.abs(frames - expected).max() < 1e-4
    assert frames.std() > 0.01, "frames should not be flat"


def test_batch_item_k_equals_a_single_run_with_seed_plus_k(engine, tiny_unet3d) -> None:
    request = _request(tiny_unet3d, guidance=5.0)
    batch = _run(engine, request, [10, 11])
    (single,) = _run(engine, request, [11])
    np.testing.assert_array_equal(batch[1], single)
    assert np.abs(batch[0] - batch[1]).max() > 1e-3


def test_decode_chunk_size_does_not_change_the_frames(engine, tiny_unet3d) -> None:
    (whole,) = _run(engine, _request(tiny_unet3d, decode_chunk_size=4), [3])
    (chunked,) = _run(engine, _request(tiny_unet3d, decode_chunk_size=1), [3])
    assert np.abs(whole - chunked).max() < 1e-5


@pytest.mark.parametrize("scheduler", ["dpm++", "euler", "unipc"])
def test_other_schedulers_run_and_differ_from_ddim(engine, tiny_unet3d, scheduler) -> None:
    (ddim,) = _run(engine, _request(tiny_unet3d), [1])
    (other,) = _run(engine, _request(tiny_unet3d, scheduler=scheduler), [1])
    assert np.isfinite(other).all() and other.shape == ddim.shape
    assert np.abs(other - ddim).max() > 1e-4


def test_progress_reports_every_step_of_every_video(engine, tiny_unet3d) -> None:
    events: list[ProgressEvent] = []
    _run(engine, _request(tiny_unet3d), [0, 1], callback=events.append)
    steps = [(e.video, e.step, e.total) for e in events if e.stage == "denoise"]
    assert steps == [(v, s, 3) for v in (0, 1) for s in (1, 2, 3)]
    assert [e.stage for e in events if e.stage != "denoise"] == ["encode", "decode", "decode"]


def test_cancel_flag_stops_between_steps(engine, tiny_unet3d) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def on_event(event: ProgressEvent) -> None:
        if event.stage == "denoise":
            seen.append(event.step)
            cancel.set()

    with pytest.raises(Cancelled):
        _run(engine, _request(tiny_unet3d), [0], callback=on_event, cancel=cancel)
    assert seen == [1]
