"""Output names: after the input image (batches, SVD) or the prompt, readable in any script, safe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from videogen.cli import app
from videogen.media.outputs import slugify

runner = CliRunner()
TINY = ["--num-frames", "2", "--steps", "1", "--height", "64", "--width", "64", "--device", "cpu"]


def _generate(*args: str) -> dict:
    result = runner.invoke(app, ["generate", *args, *TINY, "--json", "--no-watermark"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _names(summary: dict) -> list[str]:
    runs = summary.get("items", [summary])
    return [Path(video["files"]["mp4"]).name for run in runs for video in run["videos"]]


def test_a_folder_batch_on_svd_names_each_video_after_its_image(tiny_svd, tmp_path) -> None:
    stills = tmp_path / "stills"
    stills.mkdir()
    for name in ("red fox.png", "一只猫.jpg"):
        Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(stills / name)
    summary = _generate(
        "--image", str(stills), "--model", str(tiny_svd), "--seed", "3", "--out", str(tmp_path)
    )
    first, second = _names(summary)
    assert first.endswith("_red-fox_s3.mp4") and second.endswith("_一只猫_s4.mp4")
    assert "tiny-svd" not in first + second


def test_a_prompt_in_another_script_keeps_a_readable_name(tiny_unet3d, tmp_path) -> None:
    summary = _generate("一只猫在弹钢琴", "--model", str(tiny_unet3d), "--seed", "1", "--out", str(tmp_path))
    (name,) = _names(summary)
    assert name.endswith("_一只猫在弹钢琴_s1.mp4")
    assert (tmp_path / name).is_file()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("一只猫", "一只猫"),
        ("Crème brûlée", "crème-brûlée"),
        ("ＦＵＬＬ　ｗｉｄｔｈ ﬁsh", "full-width-fish"),  # NFKC: full-width forms and ligatures
        ("../../etc/passwd", "etc-passwd"),
        ('a\x00b\tc\u202ed<e>f:g"h|i?j*k\\l', "a-b-c-d-e-f-g-h-i-j-k-l"),  # control, bidi, reserved
        ("नमस्ते", "नमस्ते"),  # combining vowel signs stay with their letters
        ("🐱 🎹", "video"),
    ],
)
def test_slugs_keep_letters_and_digits_of_every_script_and_nothing_unsafe(text: str, expected: str) -> None:
    assert slugify(text) == expected


def test_slugs_are_limited_in_bytes_without_splitting_a_character() -> None:
    slug = slugify("猫" * 30, max_len=40)
    assert slug == "猫" * 13 and len(slug.encode()) == 39
    assert slugify("猫猫 " * 10, max_len=40) == "-".join(["猫猫"] * 5)  # cut at a word boundary
