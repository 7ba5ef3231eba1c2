"""--save-latents keeps the final latents; ``videogen decode`` turns them into the same video again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from videogen.cli import app

runner = CliRunner()
SMALL = ["--num-frames", "3", "--height", "64", "--width", "64", "--steps", "2", "--device", "cpu", "--json"]


def _invoke(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _pngs(folder: str) -> np.ndarray:
    return np.stack([np.asarray(Image.open(path)) for path in sorted(Path(folder).glob("*.png"))])


def test_decode_writes_the_same_frames_from_saved_latents(tiny_unet3d: Path, tmp_path: Path) -> None:
    first = _invoke(
        "generate", "a red fox", "--model", str(tiny_unet3d), "--seed", "4", "--save-latents",
        "--format", "frames", "--out", str(tmp_path / "a"), *SMALL,
    )  # fmt: skip
    files = first["videos"][0]["files"]
    assert files["latents"].endswith(".latents.safetensors")
    again = _invoke(
        "decode", files["latents"], "--format", "frames", "--format", "mp4", "--decode-chunk-size", "1",
        "--out", str(tmp_path / "b"), "--json",
    )  # fmt: skip
    decoded = again["videos"][0]["files"]
    # Another chunk size changes only float rounding: at most one quantisation step.
    difference = np.abs(_pngs(decoded["frames"]).astype(int) - _pngs(files["frames"]))
    assert difference.max() <= 1 and (difference == 0).mean() > 0.999
    sidecar = json.loads(Path(decoded["sidecar"]).read_text())
    assert sidecar["decoded_from"] == Path(files["latents"]).name
    assert sidecar["record"]["decode_chunk_size"] == 1 and sidecar["seed"] == 4
    assert Path(decoded["mp4"]).is_file() and "latents" not in decoded


def test_decode_of_an_orbit_keeps_the_input_view_as_last_frame(tmp_path: Path) -> None:
    from videogen.testing import build_tiny_model

    model = build_tiny_model("sv3d-u", tmp_path / "tiny-sv3d-u")
    still = np.zeros((64, 64, 4), np.uint8)
    still[16:48, 16:48] = (220, 40, 40, 255)
    Image.fromarray(still, "RGBA").save(tmp_path / "object.png")
    first = _invoke(
        "generate", "--image", str(tmp_path / "object.png"), "--model", str(model), "--save-latents",
        "--format", "frames", "--no-watermark", "--out", str(tmp_path / "a"),
        "--num-frames", "21", "--steps", "1", "--device", "cpu", "--json",
    )  # fmt: skip
    files = first["videos"][0]["files"]
    again = _invoke("decode", files["latents"], "--format", "frames", "--out", str(tmp_path / "b"), "--json")
    np.testing.assert_array_equal(_pngs(again["videos"][0]["files"]["frames"]), _pngs(files["frames"]))


def test_decode_refuses_a_file_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "x.safetensors").write_bytes(b"not a safetensors file")
    result = runner.invoke(app, ["decode", str(tmp_path / "x.safetensors")])
    assert result.exit_code == 2
    assert "is not a safetensors file" in result.stderr and "Traceback" not in result.stderr
