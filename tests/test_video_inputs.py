"""Video inputs: probed from their metadata, only the sampled frames decoded (each fitted at once),
the pixel limit applied to every frame, and the source clip's frame rate kept for video to video."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from videogen.cli import app
from videogen.errors import UserError
from videogen.inputs import load_inputs
from videogen.media.images import fit_image
from videogen.media.writers import write_gif, write_mp4, write_webm
from videogen.request import Request, resolve_request
from videogen.resolve import with_video_facts

runner = CliRunner()


def moving_square(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Gradients with a square that moves one step per frame, so every frame differs."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for k in range(count):
        frame = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 90.0)], axis=-1)
        frame[10:26, 4 * k : 4 * k + 16] = (240, 40, 40)
        frames.append(frame.astype(np.uint8))
    return np.stack(frames)


def every_frame(path: Path) -> list[np.ndarray]:
    """All frames, decoded independently of videogen (PyAV, or Pillow for a folder)."""
    if path.is_dir():
        return [np.asarray(Image.open(file).convert("RGB")) for file in sorted(path.glob("*.png"))]
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def write_clip(kind: str, folder: Path, frames: np.ndarray) -> Path:
    if kind == "frames":
        for number, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"{number:03d}.png")
        return folder
    path = folder / f"clip.{kind}"
    {"mp4": write_mp4, "webm": write_webm, "gif": write_gif}[kind](frames, path, 12.0)
    return path


def fitted(frame: np.ndarray, fit: str) -> np.ndarray:
    return np.asarray(fit_image(Image.fromarray(frame), 40, 32, fit, "white"))


def resolved(model: Path, **fields) -> tuple[Request, object]:
    request = Request(prompt="a knight", model=str(model), height=32, width=40, **fields)
    return resolve_request(with_video_facts(request, 64))


@pytest.mark.parametrize("kind", ["mp4", "webm", "gif", "frames"])
@pytest.mark.parametrize("count", [4, 11])  # fewer frames than the clip, and more (frames repeat)
def test_sampled_frames_are_those_of_decoding_every_frame(tiny_unet3d, tmp_path, kind, count) -> None:
    path = write_clip(kind, tmp_path, moving_square(7))
    fps = {"mp4": 12.0, "webm": 12.0, "gif": 12.5, "frames": None}  # gif delays are whole centiseconds
    for fit in ("crop", "pad"):
        request, spec = resolved(tiny_unet3d, video=str(path), num_frames=count, fit=fit)
        inputs, record = load_inputs(request, spec)
        decoded = every_frame(path)
        picked = np.linspace(0, len(decoded) - 1, count).round().astype(int)
        assert np.array_equal(inputs.video, np.stack([fitted(decoded[i], fit) for i in picked]))
        facts = record["video"]
        assert (facts["frames"], facts["width"], facts["height"], facts["fps"]) == (7, 64, 48, fps[kind])


def test_a_folder_of_frames_reads_only_the_sampled_files(tiny_unet3d, tmp_path) -> None:
    frames = moving_square(9)
    write_clip("frames", tmp_path, frames)
    for number in (1, 2, 3, 5, 6, 7):  # num_frames 3 samples 0, 4 and 8
        (tmp_path / f"{number:03d}.png").write_text("not an image: reading this file fails")
    request, spec = resolved(tiny_unet3d, video=str(tmp_path), num_frames=3, fit="stretch")
    inputs, _ = load_inputs(request, spec)
    assert np.array_equal(inputs.video, np.stack([fitted(frames[i], "stretch") for i in (0, 4, 8)]))


def _cli(*args: str) -> tuple[int, str, dict | None]:
    result = runner.invoke(app, ["generate", "a knight", "--json", "--device", "cpu", *args])
    return result.exit_code, result.stderr, json.loads(result.stdout) if result.exit_code == 0 else None


@pytest.mark.parametrize("clip", ["mp4", "frames"])
def test_max_input_pixels_applies_to_each_frame_of_a_video(tiny_unet3d, tmp_path, clip) -> None:
    source = tmp_path / "source"
    source.mkdir()
    path = write_clip(clip, source, moving_square(3))  # 64x48 = 3072 pixels a frame
    out = tmp_path / "out"
    code, err, _ = _cli(
        "--model", str(tiny_unet3d), "--video", str(path), "--max-input-pixels", "3000",
        "--num-frames", "2", "--steps", "1", "--out", str(out),
    )  # fmt: skip
    assert code == 2, err
    assert "video: " in err and "64x48 = 3072 pixels" in err and "3000 (max_input_pixels)" in err
    assert "Traceback" not in err and not out.exists()


def zeroed_frames(path: Path) -> Path:
    """The mp4 with its frame data (the mdat box) zeroed: its header is intact, no frame decodes."""
    data = bytearray(path.read_bytes())
    at = data.index(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : at - 4 + size] = bytes(size - 8)
    broken = path.with_name(f"zeroed{path.suffix}")
    broken.write_bytes(data)
    return broken


def test_the_pixel_limit_is_checked_before_a_frame_is_decoded(tiny_unet3d, tmp_path) -> None:
    broken = zeroed_frames(write_clip("mp4", tmp_path, moving_square(2)))
    request = Request(prompt="a knight", model=str(tiny_unet3d), video=str(broken), max_input_pixels=3000)
    with pytest.raises(UserError, match=r"video: 'zeroed.mp4' has frames of 64x48 = 3072 pixels"):
        with_video_facts(request, 64)
    request, spec = resolved(tiny_unet3d, video=str(broken))  # within the limit, the frames are read
    with pytest.raises(UserError, match="cannot decode video"):
        load_inputs(request, spec)


def test_video_to_video_keeps_the_clip_frame_rate_unless_fps_is_given(tiny_unet3d, tmp_path) -> None:
    clip = write_clip("mp4", tmp_path, moving_square(3))  # 12 fps; the model's default is 8
    common = ["--model", str(tiny_unet3d), "--video", str(clip), "--steps", "1", "--height", "32"]
    common += ["--width", "40"]
    for extra, fps in (([], 12), (["--fps", "5"], 5)):
        code, err, summary = _cli(*common, *extra, "--out", str(tmp_path / f"out{fps}"))
        assert code == 0, err
        files = summary["videos"][0]["files"]
        with av.open(files["mp4"]) as container:
            assert container.streams.video[0].average_rate == fps
        sidecar = json.loads(Path(files["sidecar"]).read_text())
        assert sidecar["request"]["fps"] == fps
        assert sidecar["inputs"]["video"]["fps"] == 12 and sidecar["inputs"]["video"]["frames"] == 3
