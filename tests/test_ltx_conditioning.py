"""LTX-Video keyframes, custom schedules and video to video against diffusers' LTXConditionPipeline.

The engine's keyframes (uint8 frames at a frame index, with a strength) are given to the reference as
LTXVideoCondition(image=...) for one frame and (video=[...]) for a clip. Video to video hands the
reference the clip's latents as LTXConditionPipeline expects them in ``latents``: VAE-encoded (the
posterior's mode) and normalised, at ``denoise_strength`` = strength. The tiny 0.9.5 folder (a
timestep-conditioned VAE, no dynamic shift) runs every case; 25 frames of 64x64 make 4 latent frames,
room for a clip's latent frames beyond the 2 that become extra tokens.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import LTXConditionPipeline
from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
from PIL import Image
from test_ltx_engine import assert_matches, engines, generate, ltx_folders, ltx_request, pipeline, reference

from videogen.errors import FieldError
from videogen.families.base import Inputs, Keyframe
from videogen.families.ltx_conditioning import PREFIX, Layout, linear_quadratic_sigmas

__all__ = ["engines", "ltx_folders"]  # the fixtures, shared with test_ltx_engine

FRAMES = 25
DISTILLED = [1000.0, 993.0, 987.0, 981.0, 975.0, 909.0, 725.0, 0.03]


def frames(count: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((count, 64, 64, 3)) * 255).astype(np.uint8)


def condition(keyframe: Keyframe) -> LTXVideoCondition:
    images = [Image.fromarray(frame) for frame in keyframe.frames]
    placed = {"frame_index": keyframe.frame_index, "strength": keyframe.strength}
    if len(images) == 1:
        return LTXVideoCondition(image=images[0], **placed)
    return LTXVideoCondition(video=images, **placed)


KEYFRAMES = {
    "image at 0": [Keyframe(frames(1, 0), 0)],
    "image later": [Keyframe(frames(1, 1), 16)],
    "clip later": [Keyframe(frames(17, 2), 8)],
    "weaker": [Keyframe(frames(1, 3), 0, 0.6), Keyframe(frames(1, 4), 24, 0.8)],
}


@pytest.mark.parametrize("case", list(KEYFRAMES))
def test_keyframes_match_the_condition_pipeline(ltx_folders, engines, case) -> None:
    keyframes = KEYFRAMES[case]
    folder = ltx_folders["ltx-095"]
    request = ltx_request(folder, num_frames=FRAMES, image_cond_noise_scale=0.15)
    pipe = pipeline(LTXConditionPipeline, folder)
    expected, tokens = reference(pipe, request, 5, conditions=[condition(k) for k in keyframes])
    (ours,) = generate(engines["ltx-095"], request, [5], inputs=Inputs(keyframes=keyframes))
    assert_matches(engines["ltx-095"], ours, expected, tokens)
    assert ours.record["pipeline"] == "LTXConditionPipeline"
    extra = tokens.shape[1] - engines["ltx-095"].layout.pack(ours.latents["latents"]).shape[1]
    # a later image adds one latent frame of tokens (2 x 2), a later clip its first PREFIX
    extra_frames = sum(1 if len(k.frames) == 1 else PREFIX for k in keyframes if k.frame_index > 0)
    assert extra == 4 * extra_frames


def test_image_with_keyframes_is_a_keyframe_at_frame_0(ltx_folders, engines) -> None:
    """The front door sends --image alongside keyframes; it holds frame 0 like a keyframe there."""
    image, later = frames(1, 5), Keyframe(frames(1, 6), 16)
    request = ltx_request(ltx_folders["ltx-095"], num_frames=FRAMES, image_cond_noise_scale=0.0)
    inputs = Inputs(image=Image.fromarray(image[0]), keyframes=[later])
    (ours,) = generate(engines["ltx-095"], request, [2], inputs=inputs)
    both = Inputs(keyframes=[Keyframe(image, 0), later])
    (explicit,) = generate(engines["ltx-095"], request, [2], inputs=both)
    np.testing.assert_array_equal(ours.frames, explicit.frames)


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_custom_timesteps_match_the_condition_pipeline(ltx_folders, engines, guidance) -> None:
    """The distilled models' schedule (in place of steps), without guidance as they run, and with."""
    folder = ltx_folders["ltx-095"]
    request = ltx_request(folder, timesteps=DISTILLED, guidance=guidance, guidance_rescale=0.7)
    expected, tokens = reference(pipeline(LTXConditionPipeline, folder), request, 9, timesteps=DISTILLED)
    (ours,) = generate(engines["ltx-095"], request, [9])
    assert_matches(engines["ltx-095"], ours, expected, tokens)
    assert ours.record["timesteps"] == pytest.approx(DISTILLED, abs=1e-3)
    assert ours.record["transformer_evaluations"] == len(DISTILLED)


def clip_latents(pipe: LTXConditionPipeline, clip: np.ndarray) -> torch.Tensor:
    """The clip as LTXConditionPipeline takes it in ``latents``: encoded (mode) and normalised."""
    video = pipe.video_processor.preprocess_video([Image.fromarray(frame) for frame in clip], 64, 64)
    encoded = pipe.vae.encode(video).latent_dist.mode()
    return pipe._normalize_latents(encoded, pipe.vae.latents_mean, pipe.vae.latents_std)


@pytest.mark.parametrize("with_keyframe", [False, True])
def test_video_to_video_matches_the_condition_pipeline(ltx_folders, engines, with_keyframe) -> None:
    folder = ltx_folders["ltx-095"]
    clip = frames(FRAMES, 7)
    keyframes = [Keyframe(frames(1, 8), 16)] if with_keyframe else []
    request = ltx_request(folder, num_frames=FRAMES, steps=5, strength=0.6)
    pipe = pipeline(LTXConditionPipeline, folder)
    call = {"latents": clip_latents(pipe, clip), "denoise_strength": 0.6}
    if keyframes:
        call["conditions"] = [condition(k) for k in keyframes]
    expected, tokens = reference(pipe, request, 4, **call)
    (ours,) = generate(engines["ltx-095"], request, [4], inputs=Inputs(video=clip, keyframes=keyframes))
    assert_matches(engines["ltx-095"], ours, expected, tokens)
    assert ours.record["denoising_steps"] == 3  # int(5 * 0.6)


def test_video_to_video_needs_enough_frames(ltx_folders, engines) -> None:
    request = ltx_request(ltx_folders["ltx-095"], num_frames=FRAMES, strength=0.6)
    with pytest.raises(FieldError, match="video"):
        generate(engines["ltx-095"], request, [0], inputs=Inputs(video=frames(9, 0)))


def test_a_keyframe_past_the_end_is_refused(ltx_folders, engines) -> None:
    request = ltx_request(ltx_folders["ltx-095"], num_frames=FRAMES)
    with pytest.raises(FieldError) as refused:
        generate(engines["ltx-095"], request, [0], inputs=Inputs(keyframes=[Keyframe(frames(1, 0), FRAMES)]))
    assert refused.value.field == "keyframe"  # the request field's name


def test_linear_quadratic_schedule_falls_from_1_slowly_then_fast() -> None:
    sigmas = linear_quadratic_sigmas(10)
    assert sigmas[0] == 1.0 and len(sigmas) == 10
    steps = -torch.diff(torch.cat([sigmas, torch.zeros(1)]))
    torch.testing.assert_close(steps[:5], torch.full((5,), 0.025 / 5))  # linear: 0.025 over half the steps
    assert torch.all(torch.diff(steps[5:]) > 0), "then ever larger steps down to 0"


def test_tokens_run_frame_by_frame_and_unpack_back() -> None:
    layout = Layout(patch=1, patch_t=1, spatial=32, temporal=8)
    latents = torch.randn(1, 4, 3, 2, 5)
    tokens = layout.pack(latents)
    assert tokens.shape == (1, 30, 4)
    torch.testing.assert_close(tokens[0, 10], latents[0, :, 1, 0, 0])  # second frame's first token
    torch.testing.assert_close(layout.unpack(tokens, latents.shape), latents)
    coords = layout.coords(3, 2, 5, frame_index=0, fps=8.0)
    assert coords[0, 0, ::10].tolist() == [0.0, 1 / 8, 9 / 8]  # pixel frames 0, 1, 9 in seconds
    assert coords[0, 2, :5].tolist() == [0.0, 32.0, 64.0, 96.0, 128.0]
