"""Motion-compensated frame interpolation, the streaming mp4 writer and the interpolate command."""

from __future__ import annotations

import json
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from videogen.errors import FieldError, UserError
from videogen.interpolate_command import interpolate_command
from videogen.media.interpolation import MAX_FACTOR, interpolate_frames, interpolate_video
from videogen.media.streaming import Mp4Stream
from videogen.media.writers import write_mp4

SIDE = 16  # the moving square's side, pixels
STEP = 10  # how far it moves per input frame: most of its own width
START = 8


def square_clip(count: int, height: int = 64, width: int = 96) -> list[np.ndarray]:
    """A white SIDE x SIDE square on black moving STEP pixels right per frame."""
    frames = []
    for k in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[24 : 24 + SIDE, START + k * STEP : START + k * STEP + SIDE] = 255
        frames.append(frame)
    return frames


def smooth_clip(count: int, height: int, width: int) -> list[np.ndarray]:
    """Gradients that drift a little each frame: content H.264 keeps within a few levels."""
    ys, xs = np.mgrid[0:height, 0:width]
    return [
        np.stack(
            [
                xs * 200 // max(1, width - 1) + 3 * k,
                ys * 255 // max(1, height - 1),
                128 + 0 * xs + 5 * k,
            ],
            axis=-1,
        ).astype(np.uint8)
        for k in range(count)
    ]


def decode(path: Path) -> tuple[np.ndarray, Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
        return frames, stream.average_rate


def stream_facts(path: Path) -> dict[str, object]:
    """What a player reads from the file's video stream, besides the pixels."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context
        return {
            "codec": codec.name,
            "profile": codec.profile,
            "pix_fmt": codec.pix_fmt,
            "size": (codec.width, codec.height),
            "colour": (codec.color_primaries, codec.color_trc, codec.colorspace, codec.color_range),
            "rate": stream.average_rate,
            "frames": stream.frames,
        }


def like_write_mp4(path: Path, clip: list[np.ndarray], fps: float) -> None:
    """The file matches write_mp4's for the same frames; x264's threads make the pixels differ slightly."""
    whole = path.with_name("whole.mp4")
    write_mp4(np.stack(clip), whole, fps)
    try:
        assert stream_facts(path) == stream_facts(whole)
        assert np.abs(decode(path)[0].astype(int) - decode(whole)[0]).mean() < 1.5
    finally:
        whole.unlink()


def write_with_pyav(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """Encode as another tool would: PyAV defaults, no tags, no staging."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))


def square_measure(frame: np.ndarray) -> tuple[float, int, int]:
    """(x centroid of brightness, max brightness, pixels brighter than 200)."""
    gray = frame.mean(axis=-1)
    centroid = float((gray * np.arange(gray.shape[1])).sum() / gray.sum())
    return centroid, int(gray.max()), int((gray > 200).sum())


def test_in_between_square_is_one_square_at_the_in_between_place() -> None:
    factor = 4
    clip = square_clip(5)
    frames = list(interpolate_frames(clip, factor))
    assert len(frames) == 17
    centroids = [square_measure(frame)[0] for frame in clip]
    for index, frame in enumerate(frames):
        before, offset = divmod(index, factor)
        if offset == 0:
            assert np.array_equal(frame, clip[before])  # the input frames come through untouched
            continue
        centroid, brightest, bright_area = square_measure(frame)
        expected = START + (SIDE - 1) / 2 + STEP * index / factor
        assert centroids[before] < centroid < centroids[before + 1]
        assert centroid == pytest.approx(expected, abs=1.5), index
        assert brightest >= 245, index
        assert bright_area == pytest.approx(SIDE * SIDE, rel=0.15), index


def test_a_cross_fade_fails_the_one_square_measure() -> None:
    """The measure above is not trivially met: blending the neighbours shows two half-bright squares."""
    a, b = square_clip(2)
    blend = ((a.astype(np.uint16) + b) // 2).astype(np.uint8)
    _, _, bright_area = square_measure(blend)
    assert bright_area < 0.5 * SIDE * SIDE


@pytest.mark.parametrize("factor", [2, 4])
def test_frame_counts(factor: int) -> None:
    clip = smooth_clip(4, 32, 48)
    frames = list(interpolate_frames(clip, factor))
    assert len(frames) == (4 - 1) * factor + 1
    assert all(frame.shape == clip[0].shape and frame.dtype == np.uint8 for frame in frames)
    assert all(np.array_equal(frames[k * factor], clip[k]) for k in range(4))


@pytest.mark.parametrize(("factor", "fps", "expected_fps"), [(2, None, 20), (4, None, 40), (2, 7.5, 7.5)])
def test_interpolate_video_counts_and_rate(
    tmp_path: Path, factor: int, fps: float | None, expected_fps: float
) -> None:
    source, target = tmp_path / "source.mp4", tmp_path / "more.mp4"
    with Mp4Stream(source, 10) as stream:
        for frame in square_clip(6):
            stream.write(frame)
    written, rate = interpolate_video(source, factor, target, fps=fps)
    frames, decoded_rate = decode(target)
    assert written == len(frames) == (6 - 1) * factor + 1
    assert rate == expected_fps and decoded_rate == Fraction(expected_fps)


def test_factor_one_passes_frames_through() -> None:
    clip = square_clip(3)
    frames = list(interpolate_frames(clip, 1))
    assert len(frames) == 3 and all(out is given for out, given in zip(frames, clip, strict=True))
    assert list(interpolate_frames([], 3)) == []


@pytest.mark.parametrize("factor", [0, 9, -2, 2.5, True])
def test_bad_factor_names_the_field(tmp_path: Path, factor: object) -> None:
    with pytest.raises(FieldError, match=r"^interpolate: .* allowed") as caught:
        interpolate_frames(square_clip(2), factor)  # type: ignore[arg-type]
    assert caught.value.field == "interpolate"
    target = tmp_path / "never.mp4"
    with pytest.raises(FieldError, match="interpolate"):
        interpolate_video(tmp_path / "whatever.mp4", factor, target)  # type: ignore[arg-type]
    assert not target.exists()


def test_frames_of_different_sizes_are_refused() -> None:
    frames = [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)]
    with pytest.raises(UserError, match="frame 1 is 10x8, the first frame is 8x8"):
        list(interpolate_frames(frames, 2))


def test_mp4_stream_decodes_to_its_frames(tmp_path: Path) -> None:
    clip = smooth_clip(6, 32, 48)
    target = tmp_path / "clip.mp4"
    with Mp4Stream(target, 12, {"title": "gradient", "seed": "3"}) as stream:
        for frame in clip:
            stream.write(frame)
    assert stream.frames == 6
    frames, rate = decode(target)
    assert frames.shape == (6, 32, 48, 3) and rate == 12
    assert np.abs(frames.astype(int) - np.stack(clip)).mean() < 3
    like_write_mp4(target, clip, 12)
    facts = stream_facts(target)
    assert (facts["codec"], facts["pix_fmt"], facts["colour"][2]) == ("h264", "yuv420p", 1)  # BT.709
    with av.open(str(target)) as container:
        assert container.metadata["title"] == "gradient"
        assert json.loads(container.metadata["comment"]) == {"seed": "3"}
    data = target.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_mp4_stream_pads_odd_sizes(tmp_path: Path) -> None:
    clip = smooth_clip(3, 33, 47)
    target = tmp_path / "odd.mp4"
    with Mp4Stream(target, 8) as stream:
        for frame in clip:
            stream.write(frame)
    frames, _ = decode(target)
    assert frames.shape == (3, 34, 48, 3)
    like_write_mp4(target, clip, 8)  # padded as write_mp4 pads: the last row and column repeated
    assert np.abs(frames[:, :33, :47].astype(int) - np.stack(clip)).mean() < 3


def test_mp4_stream_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="stop"), Mp4Stream(target, 8) as stream:
        stream.write(square_clip(1)[0])
        raise RuntimeError("stop")
    with pytest.raises(ValueError, match="no frames"), Mp4Stream(target, 8):
        pass
    with pytest.raises(ValueError, match=r"frame 1 is \(8, 8\)"), Mp4Stream(target, 8) as stream:
        stream.write(np.zeros((16, 16, 3), np.uint8))
        stream.write(np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_interpolate_video_memory_does_not_grow_with_length(tmp_path: Path) -> None:
    size = 128
    frame_bytes = size * size * 3

    def peak_for(count: int) -> int:
        """Peak traced allocations interpolating a ``count``-frame clip (written beforehand, untraced)."""
        source = tmp_path / f"clip{count}.mp4"
        with Mp4Stream(source, 24) as stream:
            for k in range(count):
                frame = np.zeros((size, size, 3), np.uint8)
                frame[40:72, (2 * k) % 96 : (2 * k) % 96 + 32] = 255
                stream.write(frame)
        tracemalloc.start()
        try:
            written, _ = interpolate_video(source, 2, tmp_path / f"clip{count}_x2.mp4")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert written == (count - 1) * 2 + 1
        return peak

    short, long = peak_for(30), peak_for(300)  # the short run also takes the first-call allocations
    # holding the long clip would take 300 frames (599 written); streaming holds two frames, their
    # flow both ways and the sampling fields (each float field of 128x128x2 is 2.7 frames' bytes)
    assert long < 20 * frame_bytes, f"peak {long / frame_bytes:.1f} frames"
    assert long < short + 2 * frame_bytes, (
        f"peaks {short / frame_bytes:.1f} and {long / frame_bytes:.1f} frames"
    )


def interpolate_app() -> typer.Typer:
    app = typer.Typer()
    app.command("interpolate")(interpolate_command)

    @app.callback()
    def main() -> None:
        """Stands in for videogen's app, so the command is called by name."""

    return app


def test_command_names_outputs_without_overwriting(tmp_path: Path) -> None:
    source = tmp_path / "walk.mp4"
    write_with_pyav(source, square_clip(6), fps=12)
    runner, app = CliRunner(), interpolate_app()

    first = runner.invoke(app, ["interpolate", str(source)])
    assert first.exit_code == 0, first.stderr + first.stdout
    target = tmp_path / "walk_x2.mp4"
    assert str(target) in first.stdout and "11 frames at 24 fps" in first.stdout
    frames, rate = decode(target)
    assert len(frames) == 11 and rate == 24
    before = target.read_bytes()

    second = runner.invoke(app, ["interpolate", str(source), "-k", "2"])
    assert second.exit_code == 0, second.stderr + second.stdout
    assert (tmp_path / "walk_x2_2.mp4").is_file() and target.read_bytes() == before

    third = runner.invoke(app, ["interpolate", str(source), "--factor", "3", "--fps", "30"])
    assert third.exit_code == 0, third.stderr + third.stdout
    frames, rate = decode(tmp_path / "walk_x3.mp4")
    assert len(frames) == 16 and rate == 30

    help_text = runner.invoke(app, ["interpolate", "--help"], terminal_width=200).stdout
    assert f"1 to {MAX_FACTOR}" in help_text  # the help's range is the one the check applies

    taken = runner.invoke(app, ["interpolate", str(source), "--out", str(target)])
    assert taken.exit_code == 2 and "already exists" in taken.stderr and target.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "content", "args", "words"),
    [
        ("missing.mp4", None, [], "video not found"),
        ("notes.mp4", b"not a video at all", [], "cannot decode video"),
        ("walk.mp4", "video", ["-k", "9"], "interpolate: 9 is not allowed"),
        ("walk.mp4", "video", ["--fps", "0"], "fps: 0.0 is not allowed"),
        ("walk.mp4", "video", ["--out", "walk.webm"], "should end in .mp4"),
    ],
)
def test_command_errors_are_one_line(
    tmp_path: Path, name: str, content: bytes | str | None, args: list[str], words: str
) -> None:
    source = tmp_path / name
    if content == "video":
        write_with_pyav(source, square_clip(3), fps=12)
    elif content is not None:
        source.write_bytes(content)
    before = sorted(tmp_path.iterdir())
    result = CliRunner().invoke(interpolate_app(), ["interpolate", str(source), *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], result.stderr
    if content != "video":
        assert name in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert sorted(tmp_path.iterdir()) == before  # no placeholder or partial output left
