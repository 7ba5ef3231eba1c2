"""The Wan engine against diffusers' WanPipeline and WanVideoToVideoPipeline on tiny random weights.

How the comparison is made exact: diffusers draws its starting noise with ``randn_tensor(shape,
generator)``, which with a CPU generator is ``torch.randn(shape, generator, float32)`` on the CPU, and
the engine draws the same tensor with ``cpu_randn`` from ``cpu_generator(seed)``. So both sides get
``generator=cpu_generator(seed)`` and nothing else: the reference makes its own latents from the
same draws (text to video: the noise; video to video: the clip is encoded by the posterior's mode, no
draw, then the noise). Both get a fresh scheduler of the same kind and shift. Besides the frames
(within 1e-4 in [0, 1]), the final latents are compared too, because the tiny random VAE decodes
almost anything to nearly flat frames; the reference's come from its step-end callback.

diffusers 0.42.1's WanVideoToVideoPipeline calls ``ftfy.fix_text`` without checking that ftfy is
installed (WanPipeline checks); the tests give it WanPipeline's prompt cleaning, which is the same
function when ftfy is present.
"""

from __future__ import annotations

import threading
from pathlib import Path

import diffusers.pipelines.wan.pipeline_wan as wan_pipeline
import diffusers.pipelines.wan.pipeline_wan_video2video as wan_video2video
import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline, WanVideoToVideoPipeline
from PIL import Image

from videogen.errors import Cancelled
from videogen.families.base import GeneratedVideo, Inputs
from videogen.families.wan import Conditioning, WanEngine
from videogen.request import Request
from videogen.sampling.progress import ProgressEvent, Reporter
from videogen.sampling.seeds import cpu_generator
from videogen.testing import build_tiny_model

PROMPT = "a cat playing piano in a jazz club"
NEGATIVE = "blurry, low quality"
SHAPE = {"num_frames": 9, "height": 64, "width": 64}
SAMPLING = {"steps": 4, "guidance": 5.0, "flow_shift": 3.0, "negative_prompt": NEGATIVE}
TOLERANCE = 1e-4


@pytest.fixture(scope="session")
def wan_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny text-to-video Wan folders, built once per session."""
    root = tmp_path_factory.mktemp("wan-models")
    return {name: build_tiny_model(name, root / name) for name in ("wan-t2v", "wan-ti2v", "wan-a14b")}


@pytest.fixture(scope="module")
def engines(wan_folders) -> dict[str, WanEngine]:
    return {
        name: WanEngine.load(folder, torch.device("cpu"), torch.float32, None)
        for name, folder in wan_folders.items()
    }


def _request(folder: Path, **fields) -> Request:
    """A request as resolve() hands it to the engine: every field the engine reads is set."""
    resolved = {"scheduler": "unipc", "guidance_2": None, "strength": None, **SHAPE, **SAMPLING, **fields}
    return Request(prompt=PROMPT, model=str(folder)).model_copy(update=resolved)


def _generate(engine: WanEngine, request: Request, seeds: list[int], **options) -> list[GeneratedVideo]:
    report = Reporter(options.get("callback"), options.get("cancel"), len(seeds))
    return engine.generate(request, seeds, report, options.get("inputs"))


def _reference_scheduler(pipe, name: str, shift: float):
    """A fresh scheduler for the reference, as the engine makes it."""
    if name == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    return pipe.scheduler.from_config(pipe.scheduler.config, flow_shift=shift)


def _reference(pipe, scheduler: str, seed: int, **call) -> tuple[np.ndarray, torch.Tensor]:
    """The reference's frames (F, H, W, 3) and its final latents."""
    pipe.scheduler = _reference_scheduler(pipe, scheduler, SAMPLING["flow_shift"])
    pipe.set_progress_bar_config(disable=True)
    final: dict[str, torch.Tensor] = {}

    def keep_latents(_pipe, _step, _t, tensors):
        final["latents"] = tensors["latents"]
        return tensors

    frames = pipe(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        num_inference_steps=SAMPLING["steps"],
        generator=cpu_generator(seed),
        output_type="np",
        callback_on_step_end=keep_latents,
        **{"guidance_scale": SAMPLING["guidance"], **call},
    ).frames[0]
    return frames, final["latents"]


def _assert_matches(ours: GeneratedVideo, frames: np.ndarray, latents: torch.Tensor) -> None:
    assert ours.frames.shape == frames.shape
    assert np.abs(ours.frames - frames).max() < TOLERANCE
    assert ours.latents is not None
    assert (ours.latents["latents"] - latents).abs().max() < TOLERANCE
    assert latents.std() > 0.1, "latents should not be flat"


@pytest.mark.parametrize("scheduler", ["unipc", "euler"])
@pytest.mark.parametrize("name", ["wan-t2v", "wan-ti2v"])
def test_text_to_video_matches_wan_pipeline(wan_folders, engines, name, scheduler) -> None:
    """Wan 2.1 T2V, and Wan 2.2 TI2V-5B (expand_timesteps: a timestep per token) from text alone."""
    pipe = WanPipeline.from_pretrained(wan_folders[name])
    assert pipe.config.expand_timesteps == (name == "wan-ti2v")
    frames, latents = _reference(pipe, scheduler, 7, **SHAPE)
    request = _request(wan_folders[name], scheduler=scheduler, save_latents=True)
    (ours,) = _generate(engines[name], request, [7])
    _assert_matches(ours, frames, latents)
    assert ours.record["expert_steps"] == {"transformer": SAMPLING["steps"]}


@pytest.mark.parametrize("scheduler", ["unipc", "euler"])
def test_two_experts_match_the_a14b_pipeline(wan_folders, engines, scheduler) -> None:
    """transformer for t >= 0.875 * 1000 with guidance, transformer_2 after it with guidance_2."""
    pipe = WanPipeline.from_pretrained(wan_folders["wan-a14b"])
    assert pipe.transformer_2 is not None and pipe.config.boundary_ratio == 0.875
    frames, latents = _reference(pipe, scheduler, 3, guidance_scale_2=2.0, **SHAPE)
    request = _request(wan_folders["wan-a14b"], scheduler=scheduler, guidance_2=2.0, save_latents=True)
    (ours,) = _generate(engines["wan-a14b"], request, [3])
    _assert_matches(ours, frames, latents)
    counts = ours.record["expert_steps"]
    assert counts["transformer"] > 0 and counts["transformer_2"] > 0, "both experts should run"
    assert counts["transformer"] + counts["transformer_2"] == SAMPLING["steps"]


def test_guidance_2_steers_only_the_low_noise_expert(wan_folders, engines) -> None:
    same = _request(wan_folders["wan-a14b"], save_latents=True)
    (default,) = _generate(engines["wan-a14b"], same, [3])
    (explicit,) = _generate(engines["wan-a14b"], same.model_copy(update={"guidance_2": 5.0}), [3])
    (other,) = _generate(engines["wan-a14b"], same.model_copy(update={"guidance_2": 1.5}), [3])
    torch.testing.assert_close(default.latents["latents"], explicit.latents["latents"], rtol=0, atol=0)
    assert (other.latents["latents"] - default.latents["latents"]).abs().max() > 1e-3


def test_without_guidance_matches_and_skips_the_negative_prompt(wan_folders, engines) -> None:
    pipe = WanPipeline.from_pretrained(wan_folders["wan-t2v"])
    frames, latents = _reference(pipe, "unipc", 5, **{**SHAPE, "guidance_scale": 1.0})
    request = _request(wan_folders["wan-t2v"], guidance=1.0, save_latents=True)
    (ours,) = _generate(engines["wan-t2v"], request, [5])
    _assert_matches(ours, frames, latents)
    assert ours.record["guided_steps"] == 0


@pytest.mark.parametrize("scheduler", ["unipc", "euler"])
def test_video_to_video_matches_the_reference_pipeline(wan_folders, engines, monkeypatch, scheduler) -> None:
    monkeypatch.setattr(wan_video2video, "prompt_clean", wan_pipeline.prompt_clean)
    clip = (np.random.default_rng(0).random((9, 64, 64, 3)) * 255).astype(np.uint8)
    pipe = WanVideoToVideoPipeline.from_pretrained(wan_folders["wan-t2v"])
    frames, latents = _reference(
        pipe,
        scheduler,
        11,
        video=[Image.fromarray(frame) for frame in clip],
        strength=0.6,
        height=64,
        width=64,
    )
    request = _request(wan_folders["wan-t2v"], scheduler=scheduler, strength=0.6, save_latents=True)
    (ours,) = _generate(engines["wan-t2v"], request, [11], inputs=Inputs(video=clip))
    _assert_matches(ours, frames, latents)
    assert ours.record["denoising_steps"] == int(SAMPLING["steps"] * 0.6)


def test_progress_reports_latents_after_every_step(wan_folders, engines) -> None:
    events: list[ProgressEvent] = []
    shapes: list[tuple[int, ...]] = []
    engine = engines["wan-t2v"]
    original = Reporter.__call__

    def spy(self, stage, video=0, step=0, total=0, latents=None):
        if latents is not None:
            shapes.append(tuple(latents.shape))
        return original(self, stage, video, step, total, latents)

    request = _request(wan_folders["wan-t2v"], steps=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Reporter, "__call__", spy)
        _generate(engine, request, [1, 2], callback=events.append)
    stages = [(event.stage, event.video, event.step) for event in events]
    assert stages == [
        ("encode", 0, 0),
        *[("denoise", 0, step) for step in (1, 2, 3)],
        ("decode", 0, 0),
        *[("denoise", 1, step) for step in (1, 2, 3)],
        ("decode", 1, 0),
    ]
    assert all(event.total == 3 for event in events if event.stage == "denoise")
    assert shapes == [(1, 16, 3, 8, 8)] * 6


def test_cancel_stops_between_steps(wan_folders, engines) -> None:
    cancel = threading.Event()
    steps: list[int] = []

    def on_event(event: ProgressEvent) -> None:
        if event.stage == "denoise":
            steps.append(event.step)
            if event.step == 2:
                cancel.set()

    with pytest.raises(Cancelled):
        _generate(engines["wan-t2v"], _request(wan_folders["wan-t2v"]), [0], callback=on_event, cancel=cancel)
    assert steps == [1, 2]


def test_batch_item_k_equals_a_single_run_with_its_seed(wan_folders, engines) -> None:
    request = _request(wan_folders["wan-t2v"], steps=2, save_latents=True)
    batch = _generate(engines["wan-t2v"], request, [10, 11])
    (single,) = _generate(engines["wan-t2v"], request, [11])
    np.testing.assert_array_equal(batch[1].frames, single.frames)
    assert [video.seed for video in batch] == [10, 11]
    assert (batch[0].latents["latents"] - batch[1].latents["latents"]).abs().max() > 1e-2


def test_saved_latents_decode_to_the_same_frames(wan_folders, engines) -> None:
    engine = engines["wan-ti2v"]
    (video,) = _generate(engine, _request(wan_folders["wan-ti2v"], steps=2, save_latents=True), [4])
    assert video.latents["latents"].shape == (1, 48, 3, 4, 4)
    frames, chunk = engine.decode_saved(video.latents, None)
    np.testing.assert_array_equal(frames, video.frames)
    assert chunk == 9


def test_held_latents_run_at_timestep_zero() -> None:
    """The seam image conditioning uses: where ``keep`` is 0 the clean latents stand, at timestep 0."""
    latents = torch.randn(1, 4, 3, 4, 4)
    clean = torch.randn(1, 4, 3, 4, 4)
    keep = torch.ones(1, 1, 3, 4, 4)
    keep[:, :, 0] = 0
    conditioning = Conditioning(keep=keep, clean=clean, extra_channels=torch.zeros(1, 2, 3, 4, 4))
    held = conditioning.model_input(latents, torch.float32)
    assert held.shape == (1, 6, 3, 4, 4)
    torch.testing.assert_close(held[:, :4, 0], clean[:, :, 0])
    torch.testing.assert_close(held[:, :4, 1:], latents[:, :, 1:])
    timesteps = conditioning.token_timesteps(torch.tensor(900), latents, (1, 2, 2))
    assert timesteps.tolist() == [[0.0] * 4 + [900.0] * 8]
    plain = Conditioning().token_timesteps(torch.tensor(900), latents, (1, 2, 2))
    assert plain.tolist() == [[900.0] * 12]
