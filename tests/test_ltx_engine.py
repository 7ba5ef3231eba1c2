"""The LTX-Video engine against diffusers' LTXPipeline and LTXImageToVideoPipeline on tiny random weights.

Both sides get ``generator=cpu_generator(seed)`` and nothing else, so every draw (start noise, the
image's posterior sample, the timestep-conditioned VAE's decode noise) comes from the same stream in
the same order. Frames are compared within 1e-4 in [0, 1], and the final latents too (the reference's
from its step-end callback, unpacked from tokens), because a tiny random VAE decodes almost anything
to nearly flat frames. The prompt is read to 256 tokens on both sides (LTXPipeline defaults to 128).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import LTXImageToVideoPipeline, LTXPipeline
from diffusers.hooks import FirstBlockCacheConfig
from PIL import Image

from videogen.errors import Cancelled, FieldError
from videogen.families import ltx_memory
from videogen.families.base import GeneratedVideo, Inputs
from videogen.families.ltx import MAX_SEQUENCE_LENGTH, LTXEngine
from videogen.families.ltx_memory import ClipTiling
from videogen.families.undecoded import DecodeFailed
from videogen.request import Request
from videogen.sampling.progress import ProgressEvent, Reporter
from videogen.sampling.seeds import cpu_generator
from videogen.testing import build_tiny_model

PROMPT = "a cat playing piano in a jazz club"
NEGATIVE = "blurry, low quality"
SHAPE = {"num_frames": 9, "height": 64, "width": 64}
SAMPLING = {"steps": 3, "guidance": 3.0, "negative_prompt": NEGATIVE, "fps": 24.0}
TOLERANCE = 1e-4
MODELS = ("ltx", "ltx-095")


@pytest.fixture(scope="session")
def ltx_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ltx-models")
    return {name: build_tiny_model(name, root / name) for name in MODELS}


@pytest.fixture(scope="module")
def engines(ltx_folders) -> dict[str, LTXEngine]:
    return {
        name: LTXEngine.load(folder, torch.device("cpu"), torch.float32, None)
        for name, folder in ltx_folders.items()
    }


def ltx_request(folder: Path, **fields) -> Request:
    """A request as resolve() hands it to the engine: every field the engine reads is set."""
    resolved = {
        "guidance_rescale": 0.0,
        "timesteps": None,
        "decode_timestep": 0.05,
        "decode_noise_scale": 0.025,
        "image_cond_noise_scale": 0.15,
        "strength": None,
        "cache_threshold": None,
        "save_latents": True,
        **SHAPE,
        **SAMPLING,
        **fields,
    }
    return Request(prompt=PROMPT, model=str(folder)).model_copy(update=resolved)


def generate(engine: LTXEngine, request: Request, seeds: list[int], **options) -> list[GeneratedVideo]:
    report = Reporter(options.get("callback"), options.get("cancel"), len(seeds))
    return engine.generate(request, seeds, report, options.get("inputs"))


def reference(pipe, request: Request, seed: int, **call) -> tuple[np.ndarray, torch.Tensor]:
    """The pipeline's frames (F, H, W, 3) for ``request`` and its final latents (tokens)."""
    pipe.set_progress_bar_config(disable=True)
    final: dict[str, torch.Tensor] = {}

    def keep_latents(_pipe, _step, _t, tensors):
        final["latents"] = tensors["latents"]
        return tensors

    options = {"num_inference_steps": request.steps} if request.timesteps is None else {}
    frames = pipe(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        num_frames=request.num_frames,
        height=request.height,
        width=request.width,
        frame_rate=request.fps,
        guidance_scale=request.guidance,
        guidance_rescale=request.guidance_rescale,
        decode_timestep=request.decode_timestep,
        decode_noise_scale=request.decode_noise_scale,
        generator=cpu_generator(seed),
        output_type="np",
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        callback_on_step_end=keep_latents,
        **options,
        **call,
    ).frames[0]
    return frames, final["latents"]


def assert_matches(engine: LTXEngine, ours: GeneratedVideo, frames: np.ndarray, tokens: torch.Tensor) -> None:
    assert ours.frames.shape == frames.shape
    assert np.abs(ours.frames - frames).max() < TOLERANCE
    latents = ours.latents["latents"]
    video_tokens = tokens[
        :, -engine.layout.pack(latents).shape[1] :
    ]  # LTXCondition keeps keyframe tokens first
    assert (engine.layout.pack(latents) - video_tokens).abs().max() < TOLERANCE
    assert tokens.std() > 0.1, "latents should not be flat"


def pipeline(cls, folder: Path):
    """``cls`` on the folder's components (the 0.9.5 folder names LTXConditionPipeline)."""
    from diffusers import DiffusionPipeline

    return cls(**DiffusionPipeline.from_pretrained(folder).components)


@pytest.mark.parametrize("name", MODELS)
def test_text_to_video_matches_ltx_pipeline(ltx_folders, engines, name) -> None:
    """0.9.0 (dynamic shift, plain decoder) and 0.9.5 (decoder at decode_timestep, with its noise)."""
    request = ltx_request(ltx_folders[name], guidance_rescale=0.7 if name == "ltx" else 0.0)
    frames, tokens = reference(pipeline(LTXPipeline, ltx_folders[name]), request, 7)
    (ours,) = generate(engines[name], request, [7])
    assert_matches(engines[name], ours, frames, tokens)
    assert ours.record["pipeline"] == "LTXPipeline"
    assert ours.record["guided_steps"] == SAMPLING["steps"]
    assert ("decode_noise" in ours.latents) == (name == "ltx-095")


def test_guidance_rescale_changes_the_video(ltx_folders, engines) -> None:
    request = ltx_request(ltx_folders["ltx"])
    (plain,) = generate(engines["ltx"], request, [7])
    (rescaled,) = generate(engines["ltx"], request.model_copy(update={"guidance_rescale": 0.7}), [7])
    assert (plain.latents["latents"] - rescaled.latents["latents"]).abs().max() > 1e-3


def test_without_guidance_one_call_a_step_and_no_negative_prompt(ltx_folders, engines) -> None:
    request = ltx_request(ltx_folders["ltx"], guidance=1.0)
    frames, tokens = reference(pipeline(LTXPipeline, ltx_folders["ltx"]), request, 5)
    (ours,) = generate(engines["ltx"], request, [5])
    assert_matches(engines["ltx"], ours, frames, tokens)
    assert ours.record["guided_steps"] == 0
    assert ours.record["transformer_evaluations"] == SAMPLING["steps"]


@pytest.mark.parametrize("name", MODELS)
def test_image_to_video_matches_the_image_pipeline(ltx_folders, engines, name) -> None:
    """The first latent frame held at the image's latents (a posterior sample drawn before the noise)."""
    image = Image.fromarray((np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8))
    request = ltx_request(ltx_folders[name])
    frames, tokens = reference(pipeline(LTXImageToVideoPipeline, ltx_folders[name]), request, 3, image=image)
    (ours,) = generate(engines[name], request, [3], inputs=Inputs(image=image))
    assert_matches(engines[name], ours, frames, tokens)
    assert ours.record["pipeline"] == "LTXImageToVideoPipeline"
    (text,) = generate(engines[name], request, [3])
    assert (text.latents["latents"] - ours.latents["latents"]).abs().max() > 1e-2


def test_size_not_a_multiple_of_32_is_refused(ltx_folders, engines) -> None:
    with pytest.raises(FieldError, match="height"):
        generate(engines["ltx"], ltx_request(ltx_folders["ltx"], height=48), [0])


def test_progress_reports_video_latents_after_every_step(ltx_folders, engines) -> None:
    events: list[ProgressEvent] = []
    shapes: list[tuple[int, ...]] = []
    original = Reporter.__call__

    def spy(self, stage, video=0, step=0, total=0, latents=None):
        if latents is not None:
            shapes.append(tuple(latents.shape))
        return original(self, stage, video, step, total, latents)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Reporter, "__call__", spy)
        generate(engines["ltx"], ltx_request(ltx_folders["ltx"], steps=2), [1, 2], callback=events.append)
    stages = [(event.stage, event.video, event.step) for event in events]
    assert stages == [
        ("encode", 0, 0),
        ("denoise", 0, 1),
        ("denoise", 0, 2),
        ("decode", 0, 0),
        ("denoise", 1, 1),
        ("denoise", 1, 2),
        ("decode", 1, 0),
    ]
    assert shapes == [(1, 8, 2, 2, 2)] * 4


def test_cancel_stops_between_steps(ltx_folders, engines) -> None:
    cancel = threading.Event()
    steps: list[int] = []

    def on_event(event: ProgressEvent) -> None:
        if event.stage == "denoise":
            steps.append(event.step)
            if event.step == 2:
                cancel.set()

    with pytest.raises(Cancelled):
        generate(engines["ltx"], ltx_request(ltx_folders["ltx"]), [0], callback=on_event, cancel=cancel)
    assert steps == [1, 2]


def test_batch_item_k_equals_a_single_run_with_its_seed(ltx_folders, engines) -> None:
    request = ltx_request(ltx_folders["ltx-095"], steps=2)
    batch = generate(engines["ltx-095"], request, [10, 11])
    (single,) = generate(engines["ltx-095"], request, [11])
    np.testing.assert_array_equal(batch[1].frames, single.frames)
    assert (batch[0].latents["latents"] - batch[1].latents["latents"]).abs().max() > 1e-2


def test_first_block_cache_matches_the_pipeline_with_the_same_hooks(ltx_folders, engines) -> None:
    """diffusers' First Block Cache on both sides, in the one "cond_uncond" context of a batched step."""
    request = ltx_request(ltx_folders["ltx"], steps=6, cache_threshold=0.3)
    pipe = pipeline(LTXPipeline, ltx_folders["ltx"])
    pipe.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.3))
    frames, tokens = reference(pipe, request, 2)
    (ours,) = generate(engines["ltx"], request, [2])
    assert_matches(engines["ltx"], ours, frames, tokens)
    assert ours.record["cache_threshold"] == 0.3
    assert ours.record["transformer_skipped_evaluations"] > 0
    assert ours.record["transformer_evaluations"] + ours.record["transformer_skipped_evaluations"] == 6
    (uncached,) = generate(engines["ltx"], request.model_copy(update={"cache_threshold": None}), [2])
    assert uncached.record["transformer_skipped_evaluations"] == 0
    assert (uncached.latents["latents"] - ours.latents["latents"]).abs().max() > 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_saved_latents_decode_to_the_same_frames(ltx_folders, engines, name) -> None:
    """With a timestep-conditioned VAE the decode noise is kept with the latents."""
    engine = engines[name]
    (video,) = generate(engine, ltx_request(ltx_folders[name], steps=2), [4])
    assert video.latents["latents"].shape == (1, 8, 2, 2, 2)
    frames, chunk = engine.decode_saved(video.latents, None)
    np.testing.assert_array_equal(frames, video.frames)
    assert chunk == 9


def test_a_failed_decode_keeps_what_decodes_it_again(ltx_folders, engines, monkeypatch) -> None:
    engine = engines["ltx-095"]
    request = ltx_request(ltx_folders["ltx-095"], steps=2, save_latents=False)
    (expected,) = generate(engine, request, [6])
    decode = engine.vae.decode
    monkeypatch.setattr(
        engine.vae, "decode", lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("boom"))
    )
    with pytest.raises(DecodeFailed) as failed:
        generate(engine, request, [6])
    assert failed.value.index == 0 and failed.value.finished == []
    kept = failed.value.undecoded.latents
    assert set(kept) == {"latents", "decode_noise", "decode_timestep", "decode_noise_scale"}
    monkeypatch.setattr(engine.vae, "decode", decode)
    frames, _ = engine.decode_saved(kept, None)
    np.testing.assert_array_equal(frames, expected.frames)


def test_decode_plan_tiles_only_what_would_not_fit(engines) -> None:
    vae = engines["ltx"].vae
    shape = (1, 8, 13, 16, 22)  # 97 frames of 512 x 704
    whole = ltx_memory.decode_bytes(vae, 97, 512, 704, None)
    assert ltx_memory.plan_tilings(vae, shape, None) == [None, ClipTiling(512, 448), ClipTiling(256, 192)]
    assert ltx_memory.plan_tilings(vae, shape, whole)[0] is None
    assert ltx_memory.plan_tilings(vae, shape, whole - 1)[0] == ClipTiling(512, 448)
    assert ltx_memory.plan_tilings(vae, shape, 1) == [ClipTiling(256, 192)]


def test_a_clip_that_would_not_fit_decodes_in_tiles(ltx_folders, engines, monkeypatch) -> None:
    """Runs of latent frames (framewise decoding) bound the peak even where frames are smaller than a tile."""
    engine = engines["ltx-095"]
    request = ltx_request(ltx_folders["ltx-095"], num_frames=25, steps=2)
    (whole,) = generate(engine, request, [1])
    assert whole.record["vae_tiling"] is None
    monkeypatch.setattr(ltx_memory, "decode_budget", lambda device: 1)
    (tiled,) = generate(engine, request, [1])
    assert tiled.record["vae_tiling"] == {"tile": 256, "stride": 192, "frames": 16, "frame_stride": 8}
    assert tiled.frames.shape == whole.frames.shape == (25, 64, 64, 3)
    torch.testing.assert_close(tiled.latents["latents"], whole.latents["latents"], rtol=0, atol=0)
    assert not engine.vae.use_tiling and not engine.vae.use_framewise_decoding, "encoding stays untiled"


def test_out_of_memory_while_decoding_retries_in_tiles(ltx_folders, engines, monkeypatch) -> None:
    engine = engines["ltx"]
    decode = engine.vae.decode

    def short_of_memory(*args, **kwargs):
        if not engine.vae.use_tiling:
            raise MemoryError("whole clip")
        return decode(*args, **kwargs)

    monkeypatch.setattr(engine.vae, "decode", short_of_memory)
    (video,) = generate(engine, ltx_request(ltx_folders["ltx"], steps=2), [1])
    assert video.record["vae_tiling"] == {"tile": 512, "stride": 448, "frames": 16, "frame_stride": 8}
