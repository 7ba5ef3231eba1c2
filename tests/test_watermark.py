"""The invisible watermark: embedded bits read back from PNG frames and from H.264 mp4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from videogen.errors import UserError
from videogen.media.frames import read_video
from videogen.media.watermark import (
    MATCH_BITS,
    WATERMARK_BITS,
    decode_watermark_bits,
    detect_watermark,
    embed_watermark,
    matched_bits,
    watermark_skip_reason,
)
from videogen.media.writers import write_frames, write_mp4

# Stability-AI/generative-models, sgm/inference/helpers.py
STABILITY_MESSAGE = 0b101100111110110010010000011110111011000110011110


def natural_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients that drift from frame to frame, plus sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    frames = []
    for index in range(count):
        shift = index / count
        red = 0.5 + 0.4 * np.sin(2 * np.pi * (1.5 * x + shift))
        green = 0.5 + 0.4 * np.cos(2 * np.pi * (1.2 * y - shift))
        blue = 0.5 + 0.3 * np.sin(4 * np.pi * (x + y))
        image = np.stack([red, green, blue], axis=-1) * 255 + rng.normal(0, 8, (height, width, 3))
        frames.append(image)
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return natural_frames(3, 256, 256)


@pytest.fixture(scope="module")
def marked(frames: np.ndarray) -> np.ndarray:
    return embed_watermark(frames)


def test_message_is_stabilitys() -> None:
    assert len(WATERMARK_BITS) == 48
    assert int("".join(map(str, WATERMARK_BITS)), 2) == STABILITY_MESSAGE


def test_embedding_is_invisible(frames: np.ndarray, marked: np.ndarray) -> None:
    assert marked.shape == frames.shape and marked.dtype == np.uint8
    mse = np.mean((marked.astype(np.float64) - frames) ** 2)
    assert 10 * np.log10(255**2 / mse) > 35  # dB PSNR


def test_unmarked_frames_are_not_detected(frames: np.ndarray) -> None:
    assert (matched_bits(frames) < MATCH_BITS).all()
    assert detect_watermark(frames) == 0.0


def test_bits_survive_png_frames(marked: np.ndarray, tmp_path: Path) -> None:
    write_frames(marked, tmp_path / "frames")
    back, _ = read_video(tmp_path / "frames")
    assert np.array_equal(back, marked)
    expected = np.tile(np.asarray(WATERMARK_BITS, dtype=bool), (len(marked), 1))
    assert np.array_equal(decode_watermark_bits(back), expected)
    assert detect_watermark(back) == 1.0


def test_watermark_survives_h264_at_crf_18(marked: np.ndarray, tmp_path: Path) -> None:
    """Lossy: a few bits may flip, but every frame stays far above the detection level."""
    write_mp4(marked, tmp_path / "video.mp4", fps=8.0)
    back, _ = read_video(tmp_path / "video.mp4")
    assert (matched_bits(back) >= MATCH_BITS + 4).all()
    assert detect_watermark(back) == 1.0


def test_small_frames_are_skipped_with_a_reason() -> None:
    small = natural_frames(2, 128, 192)
    reason = watermark_skip_reason(128, 192)
    assert reason is not None and "192x128" in reason and str(256 * 256) in reason
    assert watermark_skip_reason(256, 256) is None
    with pytest.warns(UserWarning, match="watermark skipped"):
        out = embed_watermark(small)
    assert np.array_equal(out, small)
    with pytest.raises(UserError, match="cannot read a watermark"):
        detect_watermark(small)


def test_rejects_float_frames() -> None:
    with pytest.raises(ValueError, match="uint8 RGB frames"):
        embed_watermark(np.zeros((1, 256, 256, 3), dtype=np.float32))
