"""Invisible watermark, as Stability's video sampler embeds it.

Each frame gets the same fixed 48-bit message with invisible-watermark's ``dwtDct`` method: a
Haar DWT of the frame's U (chroma) channel, then in every 4x4 block of the approximation band
the value of largest magnitude (the block's first value excepted) is quantised in steps of 36
so that where it falls in its step encodes one bit. The bits repeat across all blocks and the
decoder votes per bit, so the message survives lossless storage and mild lossy compression:
H.264 at our crf 18 keeps it; VP9 at crf 24 keeps it only in key frames.

Frames must hold at least ``MIN_PIXELS`` (256x256) pixels: the library refuses smaller images,
and fewer blocks mean fewer votes per bit. ``embed_watermark`` returns such frames unchanged;
callers record ``watermark_skip_reason`` so that the sidecar says why a video carries no mark.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

import numpy as np

from videogen.errors import UserError

# Stability-AI/generative-models, sgm/inference/helpers.py: "a fixed 48-bit message that was
# chosen at random", 0xB3EC907BB19E. Using the same bits lets existing detectors find our videos.
WATERMARK_MESSAGE = 0xB3EC907BB19E
WATERMARK_BITS: tuple[int, ...] = tuple(int(bit) for bit in f"{WATERMARK_MESSAGE:048b}")
METHOD = "dwtDct"
MIN_PIXELS = 256 * 256
"""invisible-watermark raises for images with fewer pixels than this (height x width)."""
MATCH_BITS = 36
"""Frames with at least this many of the 48 bits equal to ours count as watermarked: the
"very likely watermarked" level of Stability's scripts/demo/detect.py, which saw no false
positives at it over 10,000 real images."""
MAX_PASS_PAIRS = 3
"""Encoding passes come in pairs (see ``_embed_frame``); one pair is usually enough."""
_MESSAGE = np.asarray(WATERMARK_BITS, dtype=bool)


def watermark_skip_reason(height: int, width: int) -> str | None:
    """Why frames of this size cannot carry the watermark, or None when they can."""
    if height * width >= MIN_PIXELS:
        return None
    return (
        f"watermark skipped: {width}x{height} frames have {height * width} pixels; "
        f"the {METHOD} watermark needs at least {MIN_PIXELS} (256x256)"
    )


def embed_watermark(frames: np.ndarray) -> np.ndarray:
    """Return a watermarked copy of uint8 RGB frames (F, H, W, 3).

    Frames smaller than ``MIN_PIXELS`` come back unchanged with a warning; see
    ``watermark_skip_reason``.
    """
    _check_frames(frames)
    reason = watermark_skip_reason(frames.shape[1], frames.shape[2])
    if reason is not None:
        warnings.warn(reason, stacklevel=2)
        return frames.copy()
    library = _imwatermark()
    encoder = library.WatermarkEncoder()
    encoder.set_watermark("bits", list(WATERMARK_BITS))
    decoder = library.WatermarkDecoder("bits", len(WATERMARK_BITS))
    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        out[index] = _embed_frame(np.ascontiguousarray(frame[:, :, ::-1]), encoder, decoder)[:, :, ::-1]
    return out


def _embed_frame(bgr: np.ndarray, encoder: Any, decoder: Any) -> np.ndarray:
    """Encode one BGR uint8 frame in pairs of passes until its own bits read back.

    invisible-watermark 0.2.0 hands ``pywt.idwt2`` the detail bands as (v, h, d) where
    ``dwt2`` gave (h, v, d), so every pass swaps the chroma channel's horizontal and vertical
    detail. A second pass swaps them back (about 40 dB PSNR instead of 33 on textured frames),
    and each further pass re-quantises the blocks whose largest coefficient moved, so the bits
    converge on the message. uint8 input matches how detectors read files (Stability's
    scripts/demo/detect.py uses cv2.imread); float input shifts the chroma offset and moves
    which coefficient counts as largest.
    """
    marked = bgr
    for _ in range(MAX_PASS_PAIRS):
        marked = encoder.encode(encoder.encode(marked, METHOD), METHOD)
        if np.array_equal(np.asarray(decoder.decode(marked, METHOD), dtype=bool), _MESSAGE):
            break
    return marked


def decode_watermark_bits(frames: np.ndarray) -> np.ndarray:
    """The 48 bits read from each frame, as a bool array (F, 48)."""
    _check_frames(frames)
    reason = watermark_skip_reason(frames.shape[1], frames.shape[2])
    if reason is not None:
        raise UserError(reason.replace("watermark skipped", "cannot read a watermark"))
    decoder = _imwatermark().WatermarkDecoder("bits", len(WATERMARK_BITS))
    bits = [decoder.decode(np.ascontiguousarray(frame[:, :, ::-1]), METHOD) for frame in frames]
    return np.asarray(bits, dtype=bool).reshape(len(frames), len(WATERMARK_BITS))


def matched_bits(frames: np.ndarray) -> np.ndarray:
    """How many of the 48 bits read from each frame equal our message, shape (F,).

    Unmarked frames match about half (24); see ``MATCH_BITS`` for the detection level.
    """
    return (decode_watermark_bits(frames) == _MESSAGE).sum(axis=1)


def detect_watermark(frames: np.ndarray) -> float:
    """Fraction of frames (0..1) that carry our watermark (``MATCH_BITS`` or more bits match)."""
    return float((matched_bits(frames) >= MATCH_BITS).mean())


def _check_frames(frames: np.ndarray) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB frames (F, H, W, 3), got {frames.dtype} {frames.shape}")


def _imwatermark() -> ModuleType:
    """Import invisible-watermark, turning a broken install into a message people can act on.

    It imports OpenCV; the desktop wheel (opencv-python) needs libGL, which servers often lack.
    """
    try:
        import imwatermark
    except ImportError as exc:
        raise UserError(
            f"the invisible watermark is unavailable: {exc}. Install invisible-watermark with "
            "OpenCV's headless build (pip install opencv-python-headless PyWavelets; "
            "pip install --no-deps invisible-watermark), or turn the watermark off."
        ) from None
    return imwatermark
