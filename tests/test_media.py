"""Media layer: every format decodes back to what was written, outputs never overwrite or linger."""

from __future__ import annotations

import json
import struct
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from videogen.errors import FieldError, UserError
from videogen.media import outputs as outputs_module
from videogen.media import (
    read_video,
    reserve_stem,
    slugify,
    to_uint8,
    write_frames,
    write_gif,
    write_mp4,
    write_outputs,
    write_webm,
)
from videogen.media import writers as writers_module
from videogen.media.writers import gif_durations, mp4_tags

FPS = 8.0


def make_video(frames: int = 5, height: int = 50, width: int = 66) -> np.ndarray:
    """Smooth gradient background with a red square moving right by 8 px per frame."""
    y, x = np.mgrid[0:height, 0:width]
    video = np.empty((frames, height, width, 3), np.float32)
    video[..., 0] = x / width
    video[..., 1] = y / height
    video[..., 2] = 0.5
    for i in range(frames):
        video[i, 4:14, 2 + 6 * i : 12 + 6 * i] = (1.0, 0.2, 0.1)
    return to_uint8(video)


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    return make_video()


@pytest.fixture(scope="module")
def odd_video() -> np.ndarray:
    return make_video(height=21, width=33)


def decode(path: Path) -> tuple[np.ndarray, dict[str, object]]:
    """Frames plus stream facts, read independently of ``read_video``."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        info = {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "rate": stream.average_rate,
            "colorspace": stream.codec_context.colorspace,
            "metadata": dict(container.metadata),
        }
    return frames, info


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# Subsampling the chroma of the square's hard red edges to yuv420p alone costs about 3.0 mean
# abs error on this clip (measured without any codec); x264 at crf 18 and VP9 at crf 24 add
# under 0.5. A 6 bound leaves room for encoder versions yet fails on a wrong colour matrix or
# channel order, which cost 10+.
MAX_LOSSY_ERROR = 6.0


def test_mp4_round_trip(tmp_path: Path, video: np.ndarray) -> None:
    path = tmp_path / "v.mp4"
    write_mp4(video, path, FPS)
    frames, info = decode(path)
    assert frames.shape == video.shape
    assert info["codec"] == "h264"
    assert info["pix_fmt"] == "yuv420p"
    assert info["rate"] == FPS
    assert info["colorspace"] == 1  # AVCOL_SPC_BT709, so players need not guess the matrix
    assert mean_abs_error(frames, video) < MAX_LOSSY_ERROR
    assert listing(tmp_path) == ["v.mp4"]


def test_mp4_faststart_puts_moov_before_mdat(tmp_path: Path, video: np.ndarray) -> None:
    path = tmp_path / "v.mp4"
    write_mp4(video, path, FPS)
    boxes = top_level_boxes(path)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")


def test_mp4_odd_size_padded_to_even_with_edge_copies(tmp_path: Path, odd_video: np.ndarray) -> None:
    path = tmp_path / "odd.mp4"
    write_mp4(odd_video, path, FPS)
    frames, _ = decode(path)
    assert frames.shape == (5, 22, 34, 3)
    assert mean_abs_error(frames[:, :21, :33], odd_video) < MAX_LOSSY_ERROR
    assert mean_abs_error(frames[:, :21, 33], odd_video[:, :, 32]) < MAX_LOSSY_ERROR
    assert mean_abs_error(frames[:, 21, :33], odd_video[:, 20]) < MAX_LOSSY_ERROR


def test_mp4_keeps_fractional_fps(tmp_path: Path, video: np.ndarray) -> None:
    path = tmp_path / "ntsc.mp4"
    write_mp4(video, path, 24000 / 1001)
    assert decode(path)[1]["rate"] == Fraction(24000, 1001)


@pytest.mark.parametrize("fps", [0, -1.0, float("nan"), float("inf"), "fast"])
def test_writers_reject_bad_fps(tmp_path: Path, video: np.ndarray, fps: object) -> None:
    with pytest.raises(ValueError, match="fps"):
        write_mp4(video, tmp_path / "v.mp4", fps)  # type: ignore[arg-type]
    assert listing(tmp_path) == []


def test_mp4_metadata_round_trip(tmp_path: Path, video: np.ndarray) -> None:
    path = tmp_path / "meta.mp4"
    metadata = {"title": "a panda 🐼 eats bamboo", "comment": "hello", "videogen_seed": "7", "model": "svd"}
    write_mp4(video, path, FPS, metadata)
    tags = decode(path)[1]["metadata"]
    assert tags["title"] == metadata["title"]
    assert json.loads(tags["comment"]) == {"comment": "hello", "videogen_seed": "7", "model": "svd"}


def test_mp4_tags_folds_only_keys_the_muxer_drops() -> None:
    assert mp4_tags({"title": "t", "comment": "c"}) == {"title": "t", "comment": "c"}
    assert mp4_tags({"title": "t", "seed": "7"}) == {"title": "t", "comment": '{"seed":"7"}'}


def test_webm_round_trip(tmp_path: Path, video: np.ndarray) -> None:
    path = tmp_path / "v.webm"
    write_webm(video, path, FPS, {"title": "t", "videogen_seed": "7"})
    frames, info = decode(path)
    assert frames.shape == video.shape
    assert info["codec"] == "vp9"
    assert info["pix_fmt"] == "yuv420p"
    assert mean_abs_error(frames, video) < MAX_LOSSY_ERROR
    # Matroska keeps every key; the segment title reads back as "title", other tags upper-cased.
    assert info["metadata"]["title"] == "t"
    assert info["metadata"]["VIDEOGEN_SEED"] == "7"


def test_webm_odd_size_padded(tmp_path: Path, odd_video: np.ndarray) -> None:
    path = tmp_path / "odd.webm"
    write_webm(odd_video, path, FPS)
    assert decode(path)[0].shape == (5, 22, 34, 3)


def test_gif_frames_durations_and_loop(tmp_path: Path, video: np.ndarray) -> None:
    path = tmp_path / "v.gif"
    write_gif(video, path, FPS)
    with Image.open(path) as gif:
        assert gif.n_frames == 5
        assert gif.size == (66, 50)
        assert gif.info["loop"] == 0
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
    assert durations == [130, 120, 130, 120, 130]
    frames, _ = decode(path)
    # 256 colours with dithering: coarser than the video codecs, but the picture is there.
    assert mean_abs_error(frames, video) < 8


def test_gif_durations_keep_total_length() -> None:
    assert sum(gif_durations(24, 24000 / 1001)) == pytest.approx(24 * 1001 / 24, abs=10)
    assert set(gif_durations(30, 10)) == {100}
    assert gif_durations(3, 100) == [20, 20, 20]  # browsers slow delays under 20 ms to 100 ms


def test_write_frames_lossless(tmp_path: Path, odd_video: np.ndarray) -> None:
    paths = write_frames(odd_video, tmp_path / "frames")
    assert [p.name for p in paths] == [f"frame_{i:05d}.png" for i in range(5)]
    for path, expected in zip(paths, odd_video, strict=True):
        with Image.open(path) as image:
            assert np.array_equal(np.asarray(image), expected)
    assert listing(tmp_path) == ["frames"]


def test_write_frames_refuses_existing_folder(tmp_path: Path, video: np.ndarray) -> None:
    (tmp_path / "frames").mkdir()
    with pytest.raises(FileExistsError):
        write_frames(video, tmp_path / "frames")


@pytest.mark.parametrize(
    "frames",
    [np.zeros((2, 8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8), np.zeros((0, 8, 8, 3), np.uint8)],
)
def test_writers_reject_frames_that_are_not_uint8_video(tmp_path: Path, frames: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(frames, tmp_path / "v.mp4", FPS)
    assert listing(tmp_path) == []


def test_failed_encode_leaves_no_file(
    tmp_path: Path, video: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = writers_module._yuv_frame
    calls = []

    def fail_on_third(rgb: np.ndarray) -> av.VideoFrame:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("encoder broke")
        return real(rgb)

    monkeypatch.setattr(writers_module, "_yuv_frame", fail_on_third)
    with pytest.raises(RuntimeError, match="encoder broke"):
        write_mp4(video, tmp_path / "v.mp4", FPS)
    assert listing(tmp_path) == []


def test_write_outputs_writes_every_format_and_sidecar(tmp_path: Path, video: np.ndarray) -> None:
    out_dir = tmp_path / "out" / "nested"
    sidecar_in = {"prompt": "ünï", "seed": 7}
    formats = ["mp4", "webm", "gif", "frames"]
    paths = write_outputs(video, formats, out_dir, "base", FPS, sidecar_in, {"title": "t"})
    assert paths == {
        "mp4": out_dir / "base.mp4",
        "webm": out_dir / "base.webm",
        "gif": out_dir / "base.gif",
        "frames": out_dir / "base_frames",
        "sidecar": out_dir / "base.json",
    }
    assert listing(out_dir) == ["base.gif", "base.json", "base.mp4", "base.webm", "base_frames"]
    sidecar = json.loads(paths["sidecar"].read_text(encoding="utf-8"))
    assert sidecar == {
        "prompt": "ünï",
        "seed": 7,
        "outputs": {"mp4": "base.mp4", "webm": "base.webm", "gif": "base.gif", "frames": "base_frames"},
    }
    assert decode(paths["mp4"])[1]["metadata"]["title"] == "t"
    assert read_video(paths["frames"])[0].shape == video.shape


def test_write_outputs_never_overwrites(tmp_path: Path, video: np.ndarray) -> None:
    first = write_outputs(video, ["gif"], tmp_path, "base", FPS, {"n": 1})
    before = first["gif"].read_bytes()
    second = write_outputs(video[::-1].copy(), ["gif"], tmp_path, "base", FPS, {"n": 2})
    assert second["gif"] == tmp_path / "base-1.gif"
    assert first["gif"].read_bytes() == before
    assert json.loads(first["sidecar"].read_text())["n"] == 1
    assert json.loads(second["sidecar"].read_text())["n"] == 2


def test_reserve_stem_skips_stems_used_by_any_output(tmp_path: Path) -> None:
    (tmp_path / "base.gif").touch()
    (tmp_path / "base-1_frames").mkdir()
    assert reserve_stem(tmp_path, "base") == "base-2"
    assert (tmp_path / "base-2.json").exists()


def test_reserve_stem_is_race_safe(tmp_path: Path) -> None:
    stems: list[str] = []
    start = threading.Barrier(8)

    def claim() -> None:
        start.wait()
        stems.extend(reserve_stem(tmp_path, "base") for _ in range(5))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(stems)) == 40


def test_reserve_stem_rejects_paths(tmp_path: Path) -> None:
    for base in ["", "../x", "a/b", ".hidden"]:
        with pytest.raises(ValueError):
            reserve_stem(tmp_path, base)


def test_write_outputs_failure_removes_everything(
    tmp_path: Path, video: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_gif(frames: np.ndarray, path: Path, fps: float) -> None:
        path.write_bytes(b"GIF89a partial")
        raise OSError("disk full")

    monkeypatch.setattr(outputs_module, "write_gif", broken_gif)
    with pytest.raises(OSError, match="disk full"):
        write_outputs(video, ["mp4", "frames", "gif"], tmp_path, "base", FPS, {})
    assert listing(tmp_path) == []


def test_write_outputs_unknown_format(tmp_path: Path, video: np.ndarray) -> None:
    with pytest.raises(FieldError) as info:
        write_outputs(video, ["mp4", "avi"], tmp_path / "out", "base", FPS, {})
    assert info.value.field == "format"
    assert "'avi'" in str(info.value)
    assert "mp4, webm, gif, frames" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_to_uint8_clips_and_rounds() -> None:
    values = np.array([-0.5, 0.0, 0.3, 0.5, 1.0, 1.5], np.float32).reshape(1, 1, 2, 3)
    assert to_uint8(values).ravel().tolist() == [0, 0, 76, 128, 255, 255]
    assert to_uint8(values).dtype == np.uint8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A panda, eating bamboo!", "a-panda-eating-bamboo"),
        ("Crème brûlée  --  à la mode", "crème-brûlée-à-la-mode"),
        ("熊猫", "熊猫"),
        ("", "video"),
        ("word " * 20, "word-word-word-word-word-word-word-word"),
    ],
)
def test_slugify(text: str, expected: str) -> None:
    assert slugify(text) == expected


def test_slugify_cuts_long_words() -> None:
    assert slugify("x" * 100, max_len=10) == "x" * 10


@pytest.mark.parametrize("fmt", ["mp4", "webm", "gif"])
def test_read_video_files(tmp_path: Path, video: np.ndarray, fmt: str) -> None:
    path = tmp_path / f"v.{fmt}"
    {"mp4": write_mp4, "webm": write_webm, "gif": write_gif}[fmt](video, path, FPS)
    frames, fps = read_video(path)
    assert frames.dtype == np.uint8
    assert frames.shape == video.shape
    assert fps == pytest.approx(FPS, rel=0.05)  # gif delays are whole centiseconds
    assert read_video(path, max_frames=2)[0].shape[0] == 2


def test_read_video_folder_of_pngs(tmp_path: Path, video: np.ndarray) -> None:
    for i, frame in enumerate(video):
        Image.fromarray(frame).save(tmp_path / f"img_{i:02d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    frames, fps = read_video(tmp_path)
    assert np.array_equal(frames, video)
    assert fps == 8.0
    assert np.array_equal(read_video(tmp_path, max_frames=3)[0], video[:3])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.mp4", None, "not found"),
        ("empty.mp4", b"", "empty"),
        ("garbage.mp4", b"this is not a video at all" * 50, "cannot decode"),
    ],
)
def test_read_video_errors_name_the_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message) as info:
        read_video(path)
    assert str(path) in str(info.value)


def test_read_video_folder_without_images(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no images"):
        read_video(tmp_path)
