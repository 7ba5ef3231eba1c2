"""The latent preview: a linear map from SD-VAE latent channels to RGB, small, fast, and decodable."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from videogen.sampling.preview import (
    LATENT_RGB_BIAS,
    LATENT_RGB_FACTORS,
    data_url,
    latents_to_rgb,
    preview_image,
    preview_jpeg,
)


def _one_channel(channel: int, value: float, size: int = 4) -> torch.Tensor:
    """A frame of latents (4, size, size) that is ``value`` in ``channel`` and 0 elsewhere."""
    frame = torch.zeros(4, size, size)
    frame[channel] = value
    return frame


def _colour(frame: torch.Tensor) -> np.ndarray:
    return latents_to_rgb(frame)[0, 0].astype(int)


def test_the_projection_is_the_linear_map_plus_the_bias() -> None:
    frame = torch.tensor([0.5, -0.25, 0.75, 0.1]).view(4, 1, 1).expand(4, 2, 3)
    expected = np.array(LATENT_RGB_BIAS) + np.array([0.5, -0.25, 0.75, 0.1]) @ np.array(LATENT_RGB_FACTORS)
    rgb = latents_to_rgb(frame)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[1, 2], np.round(expected * 255))
    assert (latents_to_rgb(torch.zeros(4, 1, 1))[0, 0] == round(0.5 * 255)).all()  # zero: mid-grey


@pytest.mark.parametrize(
    ("channel", "value", "colour"),
    [
        (0, 2.0, "bright"),
        (0, -2.0, "dark"),
        (1, 2.0, "green"),
        (1, -2.0, "magenta"),
        (2, 2.0, "cyan"),
        (2, -2.0, "red"),
        (3, 2.0, "yellow"),
        (3, -2.0, "blue"),
    ],
)
def test_each_channel_moves_the_colour_the_sd_latent_space_does(channel, value, colour) -> None:
    """The directions observed on Stable Diffusion's VAE latents: brightness, green-magenta,
    cyan-red, yellow-blue."""
    r, g, b = _colour(_one_channel(channel, value))
    grey = round(0.5 * 255)
    checks = {
        "bright": min(r, g, b) > grey,
        "dark": max(r, g, b) < grey,
        "green": g > r and g > b,
        "magenta": r > g and b > g,
        "cyan": g > r and b > r,
        "red": r > g + 60 and r > b + 60,
        "yellow": r > b + 60 and g > b + 60,
        "blue": b > r and b > g,
    }
    assert checks[colour], (r, g, b)


def test_a_red_square_in_the_latents_shows_as_a_red_square_on_grey() -> None:
    latents = torch.zeros(1, 4, 3, 8, 8)
    latents[0, 2, :, 2:6, 2:6] = -1.5  # the red end of the cyan-red channel
    latents[0, 1, :, 2:6, 2:6] = -0.5  # and a little magenta
    image = np.asarray(preview_image(latents, max_side=64))
    assert image.shape == (64, 64, 3)
    inside, outside = image[32, 32].astype(int), image[2, 2].astype(int)
    assert inside[0] > inside[1] + 50 and inside[0] > inside[2] + 50, inside
    assert np.ptp(outside) == 0, outside  # grey


def test_noisy_latents_are_brought_back_to_unit_spread_not_saturated() -> None:
    noise = torch.randn(4, 32, 32, generator=torch.Generator().manual_seed(0))
    loud = latents_to_rgb(noise * 700)  # where Euler starts
    assert np.abs(loud.astype(int) - latents_to_rgb(noise / noise.std())).max() <= 1  # rounding
    assert ((loud == 0) | (loud == 255)).mean() < 0.15  # unscaled, nearly all would be


def test_the_preview_is_the_middle_frame_scaled_up_by_a_whole_factor() -> None:
    latents = torch.zeros(1, 4, 5, 40, 72)  # Zeroscope 576x320
    latents[0, 0, 2] = 2.0  # only the middle frame is bright
    image = preview_image(latents)
    assert image.size == (216, 120)  # x3: the largest whole factor within 256
    assert np.asarray(image).min() > 128
    large = preview_image(torch.zeros(1, 4, 1, 300, 600))  # longer than the limit: a stride of 3
    assert large.size == (200, 100)


def test_the_jpeg_decodes_is_deterministic_and_takes_milliseconds() -> None:
    latents = torch.randn(1, 4, 16, 72, 128, generator=torch.Generator().manual_seed(1))
    first = preview_jpeg(latents)
    started = time.perf_counter()
    again = preview_jpeg(latents)
    assert time.perf_counter() - started < 0.5  # about 1 ms on one CPU core; generous for a busy machine
    assert first == again
    image = Image.open(io.BytesIO(first))
    assert image.format == "JPEG" and image.size == (256, 144) and image.mode == "RGB"
    url = data_url(first)
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == first


def test_half_precision_latents_are_previewed() -> None:
    jpeg = preview_jpeg(torch.randn(1, 4, 2, 8, 8, dtype=torch.float16))
    assert Image.open(io.BytesIO(jpeg)).size == (256, 256)


def test_latents_of_another_shape_are_refused_with_the_shape_taken() -> None:
    with pytest.raises(ValueError, match=r"latents: shape \(2, 4, 2, 8, 8\); a preview takes one video's"):
        preview_jpeg(torch.zeros(2, 4, 2, 8, 8))
    with pytest.raises(ValueError, match=r"latents: shape \(8, 8\); a preview takes one frame of \(channels"):
        latents_to_rgb(torch.zeros(8, 8))


@pytest.mark.parametrize("channels", [16, 48])
def test_wan_latents_show_their_structure_in_false_colour(channels: int) -> None:
    """Wan's latent spaces have no fitted factors: a frame whose halves differ shows two colours; the
    same frame at another scale, or one step later (a little changed), shows the same colours."""
    generator = torch.Generator().manual_seed(0)
    left, right = torch.randn(channels, generator=generator), torch.randn(channels, generator=generator)
    frame = torch.empty(channels, 8, 8)
    frame[:, :, :4] = left[:, None, None]
    frame[:, :, 4:] = right[:, None, None]
    frame += 0.05 * torch.randn(channels, 8, 8, generator=generator)
    rgb = latents_to_rgb(frame).astype(float)
    halves = rgb[:, :4].reshape(-1, 3).mean(0), rgb[:, 4:].reshape(-1, 3).mean(0)
    assert abs(halves[0] - halves[1]).max() > 60, halves
    assert abs(latents_to_rgb(frame * 3) - rgb).max() <= 1
    later = frame + 0.01 * torch.randn(channels, 8, 8, generator=generator)
    assert abs(latents_to_rgb(later).astype(float) - rgb).max() < 30  # directions' signs fixed: no flicker
    jpeg = preview_jpeg(frame[None, :, None].repeat(1, 1, 3, 1, 1))
    assert Image.open(io.BytesIO(jpeg)).size == (256, 256)
