"""SVD and SV3D through the command line: files, watermark, folder batches and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from videogen.cli import app
from videogen.media.watermark import detect_watermark
from videogen.testing import build_tiny_model

runner = CliRunner()
SMALL = ["--num-frames", "3", "--steps", "2", "--device", "cpu", "--json"]


def photo(path: Path, size: tuple[int, int] = (96, 64), mode: str = "RGB") -> Path:
    """A smooth gradient with a coloured disc: enough texture for the watermark."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 / width, y * 255 / height, 128 + 60 * np.sin(x / 7.0)], axis=-1)
    disc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(size) / 4) ** 2
    rgb[disc] = (230, 60, 40)
    image = Image.fromarray(rgb.astype(np.uint8))
    if mode == "RGBA":
        image.putalpha(Image.fromarray((disc * 255).astype(np.uint8)))
    image.save(path)
    return path


def _generate(*args: str) -> tuple[int, str, dict | None]:
    result = runner.invoke(app, ["generate", *args])
    summary = json.loads(result.stdout) if result.exit_code in (0, 1) and result.stdout.strip() else None
    return result.exit_code, result.stderr, summary


@pytest.fixture(scope="module")
def tiny_sv3d_p(tmp_path_factory) -> Path:
    return build_tiny_model("sv3d-p", tmp_path_factory.mktemp("models") / "tiny-sv3d-p")


def test_svd_writes_video_input_image_and_watermark(tiny_svd, tmp_path) -> None:
    image = photo(tmp_path / "photo.png", (320, 256))
    code, err, summary = _generate(
        "--image", str(image), "--model", str(tiny_svd), "--height", "256", "--width", "256",
        "--motion-bucket-id", "180", "--cond-fps", "6", "--seed", "23",
        "--format", "mp4", "--format", "frames", "--out", str(tmp_path / "out"), *SMALL,
    )  # fmt: skip
    assert code == 0, err
    files = summary["videos"][0]["files"]
    assert Path(files["mp4"]).is_file() and Path(files["input"]).is_file()
    assert Image.open(files["input"]).size == (256, 256)
    sidecar = json.loads(Path(files["sidecar"]).read_text())
    assert sidecar["watermark"]["embedded"] is True
    assert sidecar["request"]["motion_bucket_id"] == 180 and sidecar["request"]["cond_fps"] == 6.0
    assert sidecar["record"]["decode_chunk_size"] == 3  # every frame fits in memory, and 3 <= 14
    pngs = np.stack([np.asarray(Image.open(p)) for p in sorted(Path(files["frames"]).glob("*.png"))])
    assert detect_watermark(pngs) == 1.0


def test_no_watermark_is_recorded(tiny_svd, tmp_path) -> None:
    image = photo(tmp_path / "photo.png")
    code, err, summary = _generate(
        "--image", str(image), "--model", str(tiny_svd), "--height", "64", "--width", "64", "--no-watermark",
        "--out", str(tmp_path), *SMALL,
    )  # fmt: skip
    assert code == 0, err
    sidecar = json.loads(Path(summary["videos"][0]["files"]["sidecar"]).read_text())
    assert sidecar["watermark"] == {"embedded": False, "reason": "turned off"}


def test_folder_batch_skips_a_corrupt_image(tiny_svd, tmp_path) -> None:
    stills = tmp_path / "stills"
    stills.mkdir()
    photo(stills / "a.png")
    (stills / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    photo(stills / "c.jpg")
    code, err, summary = _generate(
        "--image", str(stills), "--model", str(tiny_svd), "--height", "64", "--width", "64", "--seed", "5",
        "--out", str(tmp_path / "out"), *SMALL,
    )  # fmt: skip
    assert code == 1, err
    assert [Path(item["image"]).name for item in summary["items"]] == ["a.png", "c.jpg"]
    assert [item["seed"] for item in summary["items"]] == [5, 7]
    assert list(summary["failures"]) == ["b.png"] and "not a readable image" in summary["failures"]["b.png"]
    assert len(list((tmp_path / "out").glob("*.mp4"))) == 2


def test_sv3d_orbit_from_an_rgba_image(tiny_sv3d_p, tmp_path) -> None:
    image = photo(tmp_path / "toy.png", (120, 90), mode="RGBA")
    code, err, summary = _generate(
        "--image", str(image), "--model", str(tiny_sv3d_p), "--height", "64", "--width", "64",
        "--camera-path", "wave", "--elevation", "5", "--out", str(tmp_path),
        "--num-frames", "5", "--steps", "2", "--device", "cpu", "--json",
    )  # fmt: skip
    assert code == 0, err
    sidecar = json.loads(Path(summary["videos"][0]["files"]["sidecar"]).read_text())
    assert sidecar["request"]["camera_path"] == "wave"
    assert len(sidecar["record"]["elevations"]) == 5
    corner = np.asarray(Image.open(summary["videos"][0]["files"]["input"]))[0, 0]
    assert tuple(corner) == (255, 255, 255)  # the transparent background became white


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--model", "svd", "--motion-bucket-id", "300"],
            "motion_bucket_id: 300 is not allowed; must be <= 255",
        ),
        (["--model", "sv3d-u", "--height", "512"], "height: 512 is not allowed; sv3d-u takes only 576x576"),
        (
            ["--model", "sv3d-p", "--num-frames", "14"],
            "num_frames: 14 is not allowed; sv3d-p takes exactly 21",
        ),
        (["--model", "modelscope-t2v", "--motion-bucket-id", "10"], "does not use it (only svd models"),
        (["--model", "svd"], "image: None is not allowed; svd turns an image into a video"),
    ],
)
def test_svd_request_errors(args, expected, tmp_path) -> None:
    image = [] if args[1] == "svd" and len(args) == 2 else ["--image", str(photo(tmp_path / "p.png"))]
    result = runner.invoke(app, ["generate", "a prompt", *image, *args])
    assert result.exit_code == 2
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_elevation_list_of_the_wrong_length(tiny_sv3d_p, tmp_path) -> None:
    image = photo(tmp_path / "toy.png", mode="RGBA")
    code, err, _ = _generate(
        "--image", str(image), "--model", str(tiny_sv3d_p), "--height", "64", "--width", "64",
        "--elevation", "1,2,3", "--num-frames", "5", "--steps", "1", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2 and "elevations: " in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_prompt_to_an_image_only_model_warns(tiny_svd, tmp_path, caplog) -> None:
    image = photo(tmp_path / "photo.png")
    code, err, _ = _generate(
        "a prompt", "--image", str(image), "--model", str(tiny_svd), "--height", "64", "--width", "64",
        "--out", str(tmp_path), *SMALL,
    )  # fmt: skip
    assert code == 0, err
    assert "the prompt is ignored" in caplog.text
