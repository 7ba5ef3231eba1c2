"""SV3D input preparation: one object, centred with a margin, on white, as a square.

Follows Stability's scripts/sampling/simple_video_sample.py for sv3d_u/sv3d_p: an image with
transparency keeps its alpha; any other image has its background removed with rembg (after a
thumbnail to 768 px, with alpha matting). The bounding box of the pixels with alpha above 0 is
cut out and centred on a transparent square whose side is the box's longer side divided by
``frame_ratio``; the square is resized to ``size`` (LANCZOS) and composited on white.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from PIL import Image

from videogen.errors import FieldError, UserError
from videogen.media.images import flatten

log = logging.getLogger(__name__)
REMBG_MODEL = "u2net"
"""rembg's default model when Stability's script was written (rembg now defaults to another)."""
REMBG_MAX_SIDE = 768
WHITE = (255, 255, 255)


def prepare_object_image(
    image: Image.Image, size: int = 576, frame_ratio: float = 0.85, remove_background: bool = True
) -> Image.Image:
    """The SV3D conditioning image: RGB, ``size`` x ``size``, the object centred on white.

    ``frame_ratio`` (0 < r <= 1) is the share of the side the object's longer side fills. With
    ``remove_background`` False an image without transparency is taken whole as the object, so it
    is only shrunk by ``frame_ratio`` and padded to a square (1.0: padded only).
    """
    if size < 1:
        raise FieldError("width", size, "at least 1 pixel")
    if not 0 < frame_ratio <= 1:
        raise FieldError("image_frame_ratio", frame_ratio, "greater than 0 and at most 1")
    rgba = _object_rgba(image, remove_background)
    box = rgba.getchannel("A").getbbox()
    if box is None:
        raise UserError("image: every pixel is transparent, so there is no object to centre")
    square = _centre_on_square(rgba.crop(box), frame_ratio)
    return flatten(square.resize((size, size), Image.Resampling.LANCZOS), WHITE)


def _object_rgba(image: Image.Image, remove_background: bool) -> Image.Image:
    """The image with an alpha channel that marks the object."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return image.convert("RGBA")
    if not remove_background:
        return image.convert("RGBA")
    small = image.convert("RGB")
    small.thumbnail((REMBG_MAX_SIDE, REMBG_MAX_SIDE), Image.Resampling.LANCZOS)
    return remove_background_rembg(small.convert("RGBA"))


def _centre_on_square(cutout: Image.Image, frame_ratio: float) -> Image.Image:
    """A transparent square with ``cutout`` in the middle, filling ``frame_ratio`` of the side."""
    width, height = cutout.size
    side = int(max(width, height) / frame_ratio)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    centre = side // 2
    square.paste(cutout, (centre - width // 2, centre - height // 2))
    return square


def remove_background_rembg(image: Image.Image) -> Image.Image:
    """RGBA cutout of the main object, via rembg (an optional dependency with downloaded weights)."""
    session = _rembg_session()
    import rembg

    return rembg.remove(image, session=session, alpha_matting=True)


@cache
def _rembg_session() -> Any:
    """rembg's u2net session, created once: it loads (and on first use downloads) ~170 MB of weights."""
    try:
        import rembg
    except ImportError:
        why = "rembg is not installed; install the sv3d extra: pip install 'videogen[sv3d]'"
        raise UserError(_unavailable(why)) from None
    try:
        return rembg.new_session(REMBG_MODEL)
    except Exception as exc:  # no network for the weights, a broken onnxruntime, a corrupt download
        log.warning("rembg could not load %s: %s: %s", REMBG_MODEL, type(exc).__name__, exc)
        why = (
            f"rembg could not load its {REMBG_MODEL} model ({REMBG_MODEL}.onnx, downloaded on first use, "
            "so the first run needs the network; the log has rembg's own message)"
        )
        raise UserError(_unavailable(why)) from None


def _unavailable(why: str) -> str:
    """The library's own words stay in the log: people are told what to do instead."""
    return (
        f"background removal is unavailable: {why}. Or pass an RGBA image whose background is "
        "transparent, or turn remove_background off (--no-remove-background) to take the whole image "
        "as the object."
    )
