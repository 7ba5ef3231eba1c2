"""Input images: safe loading (size limit before decoding, EXIF orientation) and fitting to a size."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

from videogen.errors import FieldError, UserError


def load_image(path: Path, max_pixels: int) -> Image.Image:
    """Open an image Pillow can read, refusing oversized ones before their pixels are decoded."""
    if not path.is_file():
        raise UserError(f"image: {str(path)!r} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise UserError(f"image: {str(path)!r} is an empty file (0 bytes)")
    try:
        with Image.open(path) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                raise UserError(
                    f"image: {str(path)!r} has {width}x{height} = {width * height} pixels, "
                    f"more than the limit of {max_pixels} (max_input_pixels)"
                )
            probe.load()
            return ImageOps.exif_transpose(probe)
    except Image.DecompressionBombError:
        # Pillow refuses, while opening, images over twice its own ceiling, before we see the size.
        raise UserError(
            f"image: {str(path)!r} has more than {2 * Image.MAX_IMAGE_PIXELS} pixels, which Pillow "
            f"refuses to open; the limit is {max_pixels} (max_input_pixels)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(f"image: {str(path)!r} is not a readable image ({exc})") from None


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
    """RGB version of ``image`` with any transparency composited on ``colour``."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, colour)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def parse_colour(value: str) -> tuple[int, int, int]:
    """A colour name or #hex as an RGB triple."""
    try:
        return ImageColor.getrgb(value)[:3]
    except ValueError:
        raise FieldError("background", value, "a colour name (white) or hex code (#20a0ff)") from None
