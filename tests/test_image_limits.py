"""``max_input_pixels`` is the limit on input images, above Pillow's own ceiling as well as below it.

Pillow refuses, while opening, images over twice its ``Image.MAX_IMAGE_PIXELS`` whatever limit
we set. The tests lower that ceiling (as a process may), so small images stand for huge ones.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from videogen.cli import app
from videogen.errors import UserError
from videogen.media.images import load_image

PILLOW_CEILING = 1000  # Pillow refuses images over 2000 pixels while opening them


@pytest.fixture(autouse=True)
def low_pillow_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PILLOW_CEILING)


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height but holds no pixel data: decoding it fails."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def test_a_limit_above_pillows_ceiling_lets_a_larger_image_through(tmp_path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (80, 60), (200, 30, 30)).save(path)  # 4800 pixels: over Pillow's 2000
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    image = load_image(path, 5000)
    assert image.size == (80, 60) and image.getpixel((40, 30)) == (200, 30, 30)
    assert Image.MAX_IMAGE_PIXELS == PILLOW_CEILING  # put back afterwards


def test_a_limit_below_the_size_refuses_the_image_before_decoding(tmp_path) -> None:
    path = header_only_png(tmp_path / "bomb.png", 80, 60)
    with pytest.raises(UserError, match=r"bomb.png' has 80x60 = 4800 pixels, more than the limit of 4000"):
        load_image(path, 4000)
    with pytest.raises(UserError, match="not a readable image"):  # proof that it holds no pixels
        load_image(path, 5000)


def test_the_cli_applies_a_limit_above_pillows_ceiling(tiny_unet3d, tmp_path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (80, 60), (200, 30, 30)).save(path)
    args = ["generate", "a knight", "--json", "--device", "cpu", "--model", str(tiny_unet3d)]
    args += ["--image", str(path), "--num-frames", "2", "--steps", "1", "--height", "32", "--width", "32"]
    result = CliRunner().invoke(app, [*args, "--max-input-pixels", "5000", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    sidecar = json.loads(Path(json.loads(result.stdout)["videos"][0]["files"]["sidecar"]).read_text())
    assert sidecar["inputs"]["image"]["name"] == "wide.png"
    refused = CliRunner().invoke(app, [*args, "--max-input-pixels", "4000"])
    assert refused.exit_code == 2 and "80x60 = 4800 pixels" in refused.stderr
