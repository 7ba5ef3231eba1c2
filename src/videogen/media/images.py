"""Input images: safe loading (size limit before decoding, EXIF orientation) and fitting to a size."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

from videogen.errors import FieldError, UserError

_PILLOW_CEILING = threading.Lock()


def load_image(path: Path, max_pixels: int, field: str = "image") -> Image.Image:
    """Open an image Pillow can read, refusing oversized ones before their pixels are decoded;
    errors name ``field``."""
    with open_image(path, max_pixels, field) as image:
        image.load()
        return ImageOps.exif_transpose(image)


@contextmanager
def open_image(path: Path, max_pixels: int | None, field: str = "image") -> Iterator[Image.Image]:
    """An opened image whose pixels are not decoded yet, refused first if over ``max_pixels``.

    Errors, also those of decoding it inside the block, name ``field`` and the file. ``None``
    leaves only Pillow's own ceiling (for files this program wrote).
    """
    if not path.is_file():
        raise UserError(f"{field}: {str(path)!r} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise UserError(f"{field}: {str(path)!r} is an empty file (0 bytes)")
    limit = "" if max_pixels is None else f"; the limit is {max_pixels} (max_input_pixels)"
    try:
        with pillow_allows(max_pixels), Image.open(path) as image:
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                raise UserError(
                    f"{field}: {str(path)!r} has {width}x{height} = {width * height} pixels, "
                    f"more than the limit of {max_pixels} (max_input_pixels)"
                )
            yield image
    except Image.DecompressionBombError:
        # Pillow refuses, while opening, images over twice its ceiling, before we see the size.
        ceiling = 2 * max(Image.MAX_IMAGE_PIXELS or 0, max_pixels or 0)
        raise UserError(
            f"{field}: {str(path)!r} has more than {ceiling} pixels, which Pillow refuses to open{limit}"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(f"{field}: {str(path)!r} is not a readable image ({exc})") from None


@contextmanager
def pillow_allows(max_pixels: int | None) -> Iterator[None]:
    """Let Pillow open images of up to ``max_pixels`` inside the block, for a limit above its own.

    Pillow refuses (over twice ``Image.MAX_IMAGE_PIXELS``) or warns about large images while it
    opens them, before the caller can see their size, so a larger limit of ours would not apply.
    That ceiling is process-wide: it is raised under a lock for the block and put back. Each
    caller checks its own limit before decoding, so an open elsewhere that sees the ceiling
    raised meanwhile is no less safe.
    """
    _PILLOW_CEILING.acquire()
    ceiling = Image.MAX_IMAGE_PIXELS
    if ceiling is None or max_pixels is None or max_pixels <= ceiling:
        _PILLOW_CEILING.release()
        yield
        return
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = ceiling
        _PILLOW_CEILING.release()


def fit_image(image: Image.Image, width: int, height: int, fit: str, background: str) -> Image.Image:
    """An RGB image of exactly width x height.

    Transparency is composited on ``background``. ``crop`` scales to cover and centre-crops,
    ``pad`` scales to fit and centres on ``background``, ``stretch`` resizes ignoring aspect.
    """
    colour = parse_colour(background)
    image = flatten(image, colour)
    if fit == "stretch":
        return image.resize((width, height), Image.Resampling.LANCZOS)
    if fit == "crop":
        return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new("RGB", (width, height), colour)
    offset = ((width - size[0]) // 2, (height - size[1]) // 2)
    canvas.paste(image.resize(size, Image.Resampling.LANCZOS), offset)
    return canvas


def flatten(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """RGB version of ``image`` with any transparency composited on ``colour``.

    An RGB image is returned as it is, not copied: an input video's full-size frames pass here.
    """
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, colour)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image if image.mode == "RGB" else image.convert("RGB")


def parse_colour(value: str) -> tuple[int, int, int]:
    """A colour name or #hex as an RGB triple."""
    try:
        return ImageColor.getrgb(value)[:3]
    except ValueError:
        raise FieldError("background", value, "a colour name (white) or hex code (#20a0ff)") from None
