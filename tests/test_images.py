"""Input images: safe loading, fitting to a frame, and SV3D's object-centred preparation."""

from __future__ import annotations

import struct
import sys
import types
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from videogen.errors import FieldError, UserError
from videogen.media import prepare
from videogen.media.images import fit_image, load_image
from videogen.media.prepare import prepare_object_image

RED = (220, 30, 30)
BLUE = (30, 40, 200)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares a 1-bit width x height image but holds (almost) no pixel data.

    Opening it costs nothing; decoding it fails. So a size error (not a decode error) proves the
    size was checked before any pixels were decoded.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


def rgba_with_object(canvas: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """A transparent canvas with one opaque red rectangle (left, top, right, bottom)."""
    image = Image.new("RGBA", canvas, (0, 0, 0, 0))
    image.paste((*RED, 255), box)
    return image


def object_box(image: Image.Image) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom) of the clearly non-white pixels."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    ys, xs = np.nonzero((255 - pixels).max(axis=-1) > 100)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.fixture(autouse=True)
def no_rembg_session_cache() -> None:
    prepare._rembg_session.cache_clear()


@pytest.fixture
def rembg_must_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(image: Image.Image) -> Image.Image:
        raise AssertionError("background removal ran on an image that did not need it")

    monkeypatch.setattr(prepare, "remove_background_rembg", fail)


# --- SV3D preparation -------------------------------------------------------------------------


@pytest.mark.usefixtures("rembg_must_not_run")
def test_rgba_object_is_centred_on_white() -> None:
    image = rgba_with_object((400, 300), (20, 150, 190, 250))  # 170 x 100, far off centre
    out = prepare_object_image(image, size=576, frame_ratio=0.85)
    assert out.mode == "RGB" and out.size == (576, 576)
    left, top, right, bottom = object_box(out)
    assert abs((left + right) / 2 - 288) <= 1 and abs((top + bottom) / 2 - 288) <= 1
    assert abs((right - left) / (bottom - top) - 170 / 100) < 0.03
    pixels = np.asarray(out)
    assert (pixels[:5] == 255).all() and (pixels[:, -5:] == 255).all()  # white margin
    assert np.abs(pixels[288, 288].astype(int) - RED).max() <= 2


@pytest.mark.usefixtures("rembg_must_not_run")
@pytest.mark.parametrize("ratio", [0.5, 0.85, 1.0])
def test_frame_ratio_sets_the_object_size(ratio: float) -> None:
    image = rgba_with_object((300, 300), (60, 100, 230, 200))  # longer side 170
    out = prepare_object_image(image, size=576, frame_ratio=ratio)
    left, _, right, _ = object_box(out)
    assert abs((right - left) - ratio * 576) <= 2


@pytest.mark.usefixtures("rembg_must_not_run")
def test_without_background_removal_the_whole_image_is_the_object() -> None:
    image = Image.new("RGB", (340, 170), RED)
    image.paste(BLUE, (170, 0, 340, 170))
    padded = prepare_object_image(image, size=576, frame_ratio=1.0, remove_background=False)
    assert padded.size == (576, 576) and padded.mode == "RGB"
    assert object_box(padded) == (0, 144, 576, 432)  # full width, letterboxed on white
    pixels = np.asarray(padded).astype(int)
    assert np.abs(pixels[288, 100] - RED).max() <= 2 and np.abs(pixels[288, 476] - BLUE).max() <= 2
    framed = prepare_object_image(image, size=576, frame_ratio=0.85, remove_background=False)
    left, _, right, _ = object_box(framed)
    assert abs((right - left) - 0.85 * 576) <= 2 and left > 0


def test_background_is_removed_with_rembg_from_a_thumbnail(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []

    def remove(image: Image.Image, session: object, alpha_matting: bool) -> Image.Image:
        seen.append(image.size)
        assert session == "u2net-session" and alpha_matting
        cutout = image.copy()  # the object: everything that is not white
        cutout.putalpha(Image.eval(image.convert("L"), lambda v: 0 if v > 250 else 255))
        return cutout

    fake = types.ModuleType("rembg")
    fake.new_session = lambda name: f"{name}-session"  # type: ignore[attr-defined]
    fake.remove = remove  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rembg", fake)
    photo = Image.new("RGB", (1600, 1200), "white")
    photo.paste(RED, (100, 100, 500, 300))
    out = prepare_object_image(photo, size=576, frame_ratio=0.85)
    assert seen == [(768, 576)]
    left, top, right, bottom = object_box(out)
    assert abs((left + right) / 2 - 288) <= 1 and abs((top + bottom) / 2 - 288) <= 1
    assert abs((right - left) - 0.85 * 576) <= 0.02 * 576  # the thumbnail blurs the cutout's edge


def test_missing_rembg_says_how_to_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rembg", None)  # import rembg -> ImportError
    with pytest.raises(UserError) as caught:
        prepare_object_image(Image.new("RGB", (64, 64), RED))
    message = str(caught.value)
    assert "background removal is unavailable" in message and "not installed" in message
    assert "videogen[sv3d]" in message and "RGBA" in message and "--no-remove-background" in message


def test_rembg_weights_that_cannot_load_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def new_session(name: str) -> object:
        raise ConnectionError("cannot reach github.com to download u2net.onnx")

    fake = types.ModuleType("rembg")
    fake.new_session = new_session  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rembg", fake)
    with pytest.raises(UserError) as caught:
        prepare_object_image(Image.new("RGB", (64, 64), RED))
    message = str(caught.value)
    assert "background removal is unavailable" in message and "u2net.onnx" in message
    assert "RGBA" in message and "--no-remove-background" in message


def test_prepare_rejects_empty_images_and_bad_ratios() -> None:
    with pytest.raises(UserError, match="transparent"):
        prepare_object_image(Image.new("RGBA", (64, 64), (0, 0, 0, 0)))
    with pytest.raises(FieldError, match="image_frame_ratio"):
        prepare_object_image(rgba_with_object((64, 64), (8, 8, 40, 40)), frame_ratio=1.5)


# --- loading ----------------------------------------------------------------------------------


def test_load_refuses_missing_empty_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="missing.png"):
        load_image(tmp_path / "missing.png", 10**6)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UserError, match=r"empty.png.*empty file \(0 bytes\)"):
        load_image(tmp_path / "empty.png", 10**6)
    (tmp_path / "garbage.jpg").write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(UserError, match="garbage.jpg.*not a readable image"):
        load_image(tmp_path / "garbage.jpg", 10**6)


def test_load_checks_the_pixel_count_before_decoding(tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "big.png", 3000, 3000)
    with pytest.raises(UserError, match=r"big.png.*3000x3000 = 9000000 pixels.*limit of 1000000"):
        load_image(path, 1_000_000)
    with pytest.raises(UserError, match="not a readable image"):  # proof that it holds no pixels
        load_image(path, 10_000_000)


def test_load_refuses_images_too_big_for_pillow(tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(UserError, match=r"bomb.png.*more than \d+ pixels.*limit is 50000000"):
        load_image(path, 50_000_000)


def test_load_applies_exif_orientation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (40, 20), RED).save(path, exif=exif)
    assert Image.open(path).size == (40, 20)
    assert load_image(path, 10**6).size == (20, 40)


def test_load_keeps_transparency(tmp_path: Path) -> None:
    path = tmp_path / "object.png"
    rgba_with_object((32, 32), (8, 8, 24, 24)).save(path)
    loaded = load_image(path, 10**6)
    assert loaded.mode == "RGBA" and loaded.getchannel("A").getbbox() == (8, 8, 24, 24)


# --- fitting ----------------------------------------------------------------------------------


@pytest.fixture
def halves() -> Image.Image:
    """200x100: left half red, right half blue."""
    image = Image.new("RGB", (200, 100), RED)
    image.paste(BLUE, (100, 0, 200, 100))
    return image


def colour_at(image: Image.Image, x: int, y: int) -> np.ndarray:
    return np.asarray(image)[y, x].astype(int)


def test_crop_covers_and_cuts_the_sides(halves: Image.Image) -> None:
    out = fit_image(halves, 100, 100, "crop", "white")
    assert out.size == (100, 100) and out.mode == "RGB"
    assert np.abs(colour_at(out, 5, 50) - RED).max() <= 3  # no background anywhere
    assert np.abs(colour_at(out, 95, 50) - BLUE).max() <= 3
    assert np.abs(colour_at(out, 40, 0) - RED).max() <= 3


def test_pad_fits_and_centres_on_the_background(halves: Image.Image) -> None:
    out = fit_image(halves, 100, 100, "pad", "#00ff00")
    assert out.size == (100, 100)
    assert tuple(colour_at(out, 50, 2)) == (0, 255, 0) and tuple(colour_at(out, 50, 97)) == (0, 255, 0)
    assert np.abs(colour_at(out, 10, 50) - RED).max() <= 3
    assert np.abs(colour_at(out, 90, 50) - BLUE).max() <= 3


def test_stretch_ignores_the_aspect_ratio(halves: Image.Image) -> None:
    out = fit_image(halves, 50, 120, "stretch", "white")
    assert out.size == (50, 120)
    assert np.abs(colour_at(out, 5, 2) - RED).max() <= 3 and np.abs(colour_at(out, 45, 117) - BLUE).max() <= 3


def test_transparency_is_composited_on_the_background() -> None:
    image = rgba_with_object((64, 64), (16, 16, 48, 48))
    out = fit_image(image, 64, 64, "stretch", "navy")
    assert tuple(colour_at(out, 2, 2)) == (0, 0, 128)
    assert np.abs(colour_at(out, 32, 32) - RED).max() <= 3


def test_unknown_background_colour_is_a_field_error(halves: Image.Image) -> None:
    with pytest.raises(FieldError) as caught:
        fit_image(halves, 64, 64, "pad", "not-a-colour")
    assert caught.value.field == "background" and caught.value.value == "not-a-colour"
