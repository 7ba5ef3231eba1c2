"""Wan image to video: the conditioning layouts, and parity with diffusers' WanImageToVideoPipeline.

The engine and the reference get the same tiny random weights, the same fitted images and a CPU
generator with the same seed: both draw only the starting noise from it (the condition latents are
the VAE posterior's mode). Wan 2.2 TI2V-5B's image to video is WanImageToVideoPipeline on a folder with
``expand_timesteps`` (WanPipeline takes no image). Frames are compared within 1e-4 in [0, 1] and so
are the final latents, since the tiny VAE decodes almost anything to nearly flat frames.

diffusers 0.42.1's Wan I2V pipeline calls ``ftfy.fix_text`` without checking that ftfy is installed;
without it the tests stand in the identity, which is what ftfy does to these ASCII prompts.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import diffusers.pipelines.wan.pipeline_wan_i2v as wan_i2v_pipeline
import numpy as np
import pytest
import torch
from diffusers import WanImageToVideoPipeline
from PIL import Image
from transformers import CLIPImageProcessor

from videogen.errors import FieldError
from videogen.families.base import GeneratedVideo, Inputs
from videogen.families.wan import WanEngine
from videogen.families.wan_conditioning import (
    ClipPreprocess,
    clip_pixels,
    condition_clip,
    first_frame_hold,
    frame_mask,
)
from videogen.request import Request
from videogen.sampling.progress import Reporter
from videogen.sampling.seeds import cpu_generator
from videogen.testing import build_tiny_model

PROMPT = "the knight raises his sword"
NEGATIVE = "blurry, low quality"
SAMPLING = {"num_frames": 9, "steps": 3, "guidance": 5.0}
TOLERANCE = 1e-4
MODELS = ("wan-i2v", "wan-flf2v", "wan-a14b-i2v", "wan-ti2v", "wan-t2v")


def picture(width: int, height: int, seed: int) -> Image.Image:
    """A random RGB image (noise resizes very differently under each filter, so it tells them apart)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_i2v_mask_marks_the_first_frame_in_all_four_channels_of_the_first_latent_frame() -> None:
    mask = frame_mask(9, 2, 3, has_last=False)
    assert mask.shape == (1, 4, 3, 2, 3)
    expected = torch.tensor([[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]], dtype=torch.float32)
    assert torch.equal(mask[0, :, :, 0, 0], expected)
    assert torch.equal(mask, expected[None, :, :, None, None].expand_as(mask))


def test_flf2v_mask_marks_the_last_frame_in_the_last_channel_of_the_last_latent_frame() -> None:
    # 13 frames: the first counted 4 times makes 16 entries, 4 latent frames of 4; frame 12 is entry 15
    mask = frame_mask(13, 1, 1, has_last=True)
    expected = torch.zeros(4, 4)
    expected[:, 0] = 1
    expected[3, 3] = 1
    assert torch.equal(mask[0, :, :, 0, 0], expected)


def test_mask_refuses_a_frame_count_the_vae_cannot_encode() -> None:
    with pytest.raises(ValueError, match="num_frames: 10 is not 4k\\+1"):
        frame_mask(10, 1, 1, has_last=False)


def test_condition_clip_is_first_frame_zeros_and_last_frame() -> None:
    first, last = picture(16, 8, 1), picture(16, 8, 2)
    clip = condition_clip(first, last, 9)
    assert clip.shape == (1, 3, 9, 8, 16)
    for index, image in ((0, first), (8, last)):
        expected = torch.from_numpy(np.asarray(image) / 127.5 - 1).float()
        assert torch.allclose(clip[0, :, index].permute(1, 2, 0), expected, atol=1e-6)
    assert not clip[0, :, 1:8].any()
    assert not condition_clip(first, None, 9)[0, :, 1:].any()


def test_condition_clip_refuses_a_last_image_of_another_size() -> None:
    with pytest.raises(ValueError, match="last_image: 8x8 differs"):
        condition_clip(picture(16, 8, 1), picture(8, 8, 2), 9)


def test_first_frame_hold_keeps_only_the_first_latent_frame() -> None:
    def encode(pixels: torch.Tensor) -> torch.Tensor:
        assert pixels.shape == (1, 3, 1, 8, 16)  # the image alone, as a one-frame clip
        return torch.full((1, 48, 1, 1, 2), 7.0)

    keep, clean = first_frame_hold(encode, picture(16, 8, 1), (1, 48, 3, 1, 2))
    assert keep.shape == (1, 1, 3, 1, 2)
    assert not keep[:, :, 0].any() and keep[:, :, 1:].all()
    assert (clean == 7).all()


@pytest.mark.parametrize(("size", "crop"), [({"shortest_edge": 40}, 36), ({"height": 30, "width": 50}, 24)])
def test_clip_pixels_equal_transformers_image_processor(tmp_path: Path, size: dict, crop: int) -> None:
    config = {
        "crop_size": {"height": crop, "width": crop},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_processor_type": "CLIPImageProcessor",
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": size,
    }
    (tmp_path / "image_processor").mkdir()
    (tmp_path / "image_processor" / "preprocessor_config.json").write_text(json.dumps(config))
    images = [picture(48, 32, 3), picture(32, 64, 4)]
    ours = clip_pixels(images, ClipPreprocess.from_folder(tmp_path))
    processor = CLIPImageProcessor.from_pretrained(tmp_path, subfolder="image_processor")
    theirs = processor(images=images, return_tensors="pt").pixel_values
    assert ours.shape == theirs.shape == (2, 3, crop, crop)
    assert torch.equal(ours, theirs)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wan-i2v-models")
    return {name: build_tiny_model(name, root / name) for name in MODELS}


@pytest.fixture(scope="module")
def engines(folders: dict[str, Path]) -> dict[str, WanEngine]:
    return {
        name: WanEngine.load(folder, torch.device("cpu"), torch.float32, None)
        for name, folder in folders.items()
    }


@pytest.fixture
def stand_in_ftfy(monkeypatch: pytest.MonkeyPatch) -> None:
    if not wan_i2v_pipeline.is_ftfy_available():
        monkeypatch.setattr(
            wan_i2v_pipeline, "ftfy", SimpleNamespace(fix_text=lambda text: text), raising=False
        )


def size_of(model: str) -> int:
    """The frames' side: 32 px (a 4 x 4 latent), 64 for TI2V, whose VAE is 16x."""
    return 64 if model == "wan-ti2v" else 32


def _request(folder: Path, **fields: object) -> Request:
    """A request as resolve() hands it to the engine (the folder's flow shift, UniPC)."""
    size = size_of(folder.name)
    resolved = {"scheduler": "unipc", "guidance_2": None, "flow_shift": None, "save_latents": True}
    resolved |= {"height": size, "width": size}
    return Request(prompt=PROMPT, negative_prompt=NEGATIVE, model=str(folder)).model_copy(
        update={**resolved, **SAMPLING, **fields}
    )


def _ours(engine: WanEngine, request: Request, seed: int, inputs: Inputs) -> GeneratedVideo:
    return engine.generate(request, [seed], Reporter(None, None, 1), inputs)[0]


def _reference(folder: Path, seed: int, inputs: Inputs, **call: object) -> tuple[np.ndarray, torch.Tensor]:
    """diffusers' frames (F, H, W, 3) and final latents for the same request."""
    pipe = WanImageToVideoPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    arguments = {
        "image": inputs.image,
        "last_image": inputs.last_image,
        "prompt": PROMPT,
        "negative_prompt": NEGATIVE,
        "height": size_of(folder.name),
        "width": size_of(folder.name),
        "num_frames": SAMPLING["num_frames"],
        "num_inference_steps": SAMPLING["steps"],
        "guidance_scale": SAMPLING["guidance"],
        **call,
    }
    latents = pipe(**arguments, generator=cpu_generator(seed), output_type="latent").frames
    frames = pipe(**arguments, generator=cpu_generator(seed), output_type="np").frames[0]
    return frames, latents


CASES = {
    # name: (model, last image?, engine fields, reference arguments, how the record says it was conditioned)
    "wan2.1-i2v": ("wan-i2v", False, {}, {}, "mask and condition latents, CLIP image embeddings"),
    "wan2.1-flf2v": ("wan-flf2v", True, {}, {}, "mask and condition latents, CLIP image embeddings"),
    "wan2.2-i2v-a14b": (
        "wan-a14b-i2v",
        True,
        {"guidance_2": 2.0},
        {"guidance_scale_2": 2.0},
        "mask and condition latents",
    ),
    "wan2.2-ti2v-5b": ("wan-ti2v", False, {}, {}, "first frame latent"),
}


@pytest.mark.usefixtures("stand_in_ftfy")
@pytest.mark.parametrize("case", CASES)
def test_image_to_video_equals_diffusers(case: str, folders, engines) -> None:
    model, with_last, fields, call, conditioning = CASES[case]
    size = size_of(model)
    inputs = Inputs(image=picture(size, size, 11), last_image=picture(size, size, 12) if with_last else None)
    video = _ours(engines[model], _request(folders[model], **fields), 5, inputs)
    frames, latents = _reference(folders[model], 5, inputs, **call)
    assert video.frames.shape == frames.shape == (9, size, size, 3)
    assert np.abs(video.frames - frames).max() < TOLERANCE
    assert video.latents is not None
    assert (video.latents["latents"] - latents).abs().max().item() < TOLERANCE
    assert video.record["image_conditioning"] == conditioning


def test_a14b_runs_both_experts_and_the_low_noise_one_with_guidance_2(folders, engines) -> None:
    inputs = Inputs(image=picture(32, 32, 11))
    engine, folder = engines["wan-a14b-i2v"], folders["wan-a14b-i2v"]
    same = _ours(engine, _request(folder), 5, inputs)
    other = _ours(engine, _request(folder, guidance_2=2.0), 5, inputs)
    assert same.record["expert_steps"] == {"transformer": 2, "transformer_2": 1}
    assert (same.latents["latents"] - other.latents["latents"]).abs().max().item() > 1e-2


@pytest.mark.parametrize("model", ["wan-i2v", "wan-flf2v"])
def test_wan21_video_depends_on_both_images(model: str, folders, engines) -> None:
    """The last image reaches the condition latents (FLF2V: and the image embeddings, in order)."""
    first, last, other = picture(32, 32, 11), picture(32, 32, 12), picture(32, 32, 13)
    engine, request = engines[model], _request(folders[model])
    if model == "wan-i2v":
        runs = [Inputs(image=first), Inputs(image=other)]
    else:
        runs = [Inputs(image=first, last_image=last), Inputs(image=last, last_image=first)]
    a, b = (_ours(engine, request, 5, inputs).latents["latents"] for inputs in runs)
    assert (a - b).abs().max().item() > 1e-2


@pytest.mark.parametrize(
    ("model", "inputs", "field", "message"),
    [
        ("wan-i2v", Inputs(), "image", "Wan image-to-video models start from an image"),
        ("wan-a14b-i2v", Inputs(), "image", "Wan image-to-video models start from an image"),
        (
            "wan-i2v",
            Inputs(picture(32, 32, 1), picture(32, 32, 2)),
            "last_image",
            "a first image only",
        ),
        ("wan-flf2v", Inputs(picture(32, 32, 1)), "last_image", "ends on a given frame; give last_image"),
        ("wan-ti2v", Inputs(picture(64, 64, 1), picture(64, 64, 2)), "last_image", "FLF2V and"),
        ("wan-t2v", Inputs(picture(32, 32, 1)), "image", "Wan text-to-video models take none"),
    ],
)
def test_images_a_model_cannot_take_are_field_errors(model, inputs, field, message, folders, engines) -> None:
    with pytest.raises(FieldError, match=message) as raised:
        _ours(engines[model], _request(folders[model]), 5, inputs)
    assert raised.value.field == field
