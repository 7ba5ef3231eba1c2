"""Writers for mp4, webm, gif and PNG frames.

All writers take uint8 RGB frames of shape (F, H, W, 3). Each writes into a temporary name
beside the target and renames it into place, so a failed or interrupted write never leaves a
half-written file under the real name.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.codeccontext import VideoCodecContext
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from PIL import Image

FORMATS = ("mp4", "webm", "gif", "frames")

MP4_TAGS = frozenset(
    {
        "title",
        "artist",
        "album_artist",
        "album",
        "date",
        "comment",
        "description",
        "copyright",
        "genre",
        "composer",
        "synopsis",
        "keywords",
        "grouping",
        "lyrics",
        "show",
        "network",
        "episode_id",
    }
)
"""Keys the mp4 muxer writes as iTunes-style tags; it silently drops every other key."""

_X264_OPTIONS = {"crf": "18", "preset": "medium"}
# Constant quality (b:v 0 turns off the bitrate target); row-mt lets libvpx use several threads.
_VP9_OPTIONS = {"crf": "24", "b:v": "0", "row-mt": "1"}


def write_mp4(frames: np.ndarray, path: Path, fps: float, metadata: dict[str, str] | None = None) -> None:
    """Write H.264 (yuv420p, BT.709) in an mp4 with the index at the front for streaming.

    Odd widths/heights are padded to even by repeating the last row/column. Metadata keys
    outside ``MP4_TAGS`` are folded into the ``comment`` tag (see ``mp4_tags``).
    """
    _encode(
        frames,
        Path(path),
        fps,
        container_format="mp4",
        codec="libx264",
        options=_X264_OPTIONS,
        container_options={"movflags": "+faststart"},
        metadata=mp4_tags(metadata or {}),
    )


def write_webm(frames: np.ndarray, path: Path, fps: float, metadata: dict[str, str] | None = None) -> None:
    """Write VP9 (yuv420p, BT.709) in a webm; Matroska keeps any metadata key."""
    _encode(
        frames,
        Path(path),
        fps,
        container_format="webm",
        codec="libvpx-vp9",
        options=_VP9_OPTIONS,
        container_options={},
        metadata=metadata or {},
    )


def write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    """Write an endlessly looping gif with one palette for the whole clip.

    Pillow merges consecutive identical frames into one longer frame, so a gif can hold fewer
    frames than given while playing for the same time.
    """
    frames = _checked(frames)
    images = _gif_images(frames)
    with staged(Path(path)) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            loop=0,
            duration=gif_durations(len(frames), fps),
        )


def write_frames(frames: np.ndarray, folder: Path) -> list[Path]:
    """Write numbered lossless PNGs ``frame_00000.png``, ... into a new folder."""
    frames = _checked(frames)
    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"frames folder already exists: {folder}")
    names = [f"frame_{i:05d}.png" for i in range(len(frames))]
    with staged(folder) as tmp:
        tmp.mkdir()
        for name, frame in zip(names, frames, strict=True):
            Image.fromarray(frame).save(tmp / name, format="PNG")
    return [folder / name for name in names]


def mp4_tags(metadata: dict[str, str]) -> dict[str, str]:
    """Map metadata to tags the mp4 muxer keeps.

    Keys outside ``MP4_TAGS`` go into ``comment`` as compact JSON (with a given comment under
    ``"comment"``). The ``use_metadata_tags`` movflag would keep custom keys, but it replaces
    all iTunes-style tags with QuickTime ``mdta`` keys, which fewer players show.
    """
    tags = {key: value for key, value in metadata.items() if key in MP4_TAGS}
    extra = {key: value for key, value in metadata.items() if key not in MP4_TAGS}
    if extra:
        if "comment" in tags:
            extra = {"comment": tags["comment"], **extra}
        tags["comment"] = json.dumps(extra, separators=(",", ":"), ensure_ascii=False)
    return tags


def gif_durations(count: int, fps: float) -> list[int]:
    """Per-frame gif delays in ms.

    Gif delays are whole centiseconds, so each frame ends at its exact time rounded to the
    nearest centisecond (8 fps gives 130, 120, 130, ... ms) and the clip keeps its length.
    Delays stay at least 20 ms because browsers play shorter ones at 100 ms.
    """
    rate = _rate(fps)
    ends = [math.floor((k + 1) * 100 / rate + Fraction(1, 2)) for k in range(count)]
    return [max(2, end - start) * 10 for start, end in zip([0, *ends[:-1]], ends, strict=True)]


def remove_output(path: Path) -> None:
    """Remove a file or folder if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; rename it into place on success, remove it on error."""
    tmp = target.with_name(f".tmp-{secrets.token_hex(4)}-{target.name}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        remove_output(tmp)
        raise


def _encode(
    frames: np.ndarray,
    path: Path,
    fps: float,
    *,
    container_format: str,
    codec: str,
    options: dict[str, str],
    container_options: dict[str, str],
    metadata: dict[str, str],
) -> None:
    frames = _pad_even(_checked(frames))
    rate = _rate(fps)
    with (
        staged(path) as tmp,
        av.open(str(tmp), "w", format=container_format, options=container_options) as out,
    ):
        out.metadata.update(metadata)
        stream = out.add_stream(codec, rate=rate, options=dict(options))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        _tag_bt709(stream.codec_context)
        for rgb in frames:
            out.mux(stream.encode(_yuv_frame(rgb)))
        out.mux(stream.encode(None))


def _tag_bt709(codec_context: VideoCodecContext) -> None:
    """Tag the stream as BT.709 limited range, matching ``_yuv_frame``.

    Untagged streams leave the matrix to the player's guess, and players guess differently.
    """
    codec_context.color_primaries = ColorPrimaries.BT709
    codec_context.color_trc = ColorTrc.BT709
    codec_context.colorspace = Colorspace.ITU709  # swscale's ITU709 and AVCOL_SPC_BT709 are both 1
    codec_context.color_range = ColorRange.MPEG


def _yuv_frame(rgb: np.ndarray) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)


def _gif_images(frames: np.ndarray) -> list[Image.Image]:
    """Quantise all frames to one palette built from a sample of them.

    Pillow's default is a palette per frame, which makes smooth areas flicker between frames.
    """
    sample = frames[:: max(1, len(frames) // 16)]
    palette = Image.fromarray(sample.reshape(-1, *sample.shape[2:])).quantize(
        colors=256, method=Image.Quantize.MEDIANCUT
    )
    return [Image.fromarray(frame).quantize(palette=palette) for frame in frames]


def _pad_even(frames: np.ndarray) -> np.ndarray:
    """Repeat the last row/column where height/width is odd; yuv420p needs even sizes."""
    _, height, width, _ = frames.shape
    if height % 2 == 0 and width % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _checked(frames: np.ndarray) -> np.ndarray:
    if not (
        isinstance(frames, np.ndarray)
        and frames.dtype == np.uint8
        and frames.ndim == 4
        and frames.shape[-1] == 3
        and min(frames.shape[:3]) > 0
    ):
        got = f"{getattr(frames, 'dtype', type(frames).__name__)} {getattr(frames, 'shape', '')}"
        raise ValueError(f"expected uint8 frames of shape (F, H, W, 3), got {got}")
    return np.ascontiguousarray(frames)


def _rate(fps: float) -> Fraction:
    """Frame rate as an exact fraction; 29.97 stays 2997/100 and 24000/1001 survives a float."""
    try:
        rate = fps if isinstance(fps, Fraction) else Fraction(float(fps))  # float() takes numpy scalars
    except (TypeError, ValueError, OverflowError):
        rate = Fraction(0)
    if rate <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return rate.limit_denominator(1001)
