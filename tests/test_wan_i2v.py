"""Wan image to video: the conditioning layouts, and parity with diffusers' pipelines on tiny weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessor

from videogen.families.wan_conditioning import (
    ClipPreprocess,
    clip_pixels,
    condition_clip,
    first_frame_hold,
    frame_mask,
)


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
