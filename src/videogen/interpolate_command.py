"""The ``videogen interpolate`` command (registered by ``videogen.cli``): more frames per second
for any video, by optical flow, with no model weights. Progress goes to stderr, the result line
to stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from videogen.console import err, fail, out
from videogen.errors import UserError


def interpolate_command(
    video: Annotated[Path, typer.Argument(help="Video file (mp4, webm, gif, ...) or a folder of frames.")],
    factor: Annotated[int, typer.Option("--factor", "-k", help="Frames out per frame in, 1 to 8.")] = 2,
    fps: Annotated[
        float | None,
        typer.Option("--fps", help="Playback rate of the result (default: source fps x factor)."),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Output mp4 (default: <stem>_x<factor>.mp4 beside the video)."),
    ] = None,
) -> None:
    """Interpolate in-between frames by motion compensation (Farneback optical flow)."""
    from videogen.media.frames import probe_video
    from videogen.media.interpolation import check_settings, interpolate_video

    try:
        check_settings(factor, fps)
        probe_video(video)  # a missing or unreadable video is reported before any file is made
        target = _default_target(video, factor) if out_path is None else _claimed(out_path)
        try:
            with Progress(
                TextColumn("interpolating"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as progress:
                task = progress.add_task("frames", total=None)

                def on_frame(done: int, expected: int) -> None:
                    progress.update(task, completed=done, total=max(done, expected))

                metadata = {"interpolated_from": video.name, "interpolation": f"farneback x{factor}"}
                written, rate = interpolate_video(video, factor, target, fps, metadata, on_frame)
        except BaseException:
            target.unlink(missing_ok=True)  # the empty placeholder; a finished file is never removed
            raise
    except UserError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; no file was written", 130) from None
    out.print(f"{target}  ({written} frames at {rate:g} fps)", highlight=False, soft_wrap=True)


def _default_target(video: Path, factor: int) -> Path:
    """Claim ``<stem>_x<factor>.mp4`` beside the video, or ``..._2``, ``..._3``, ... where that exists."""
    base = f"{video.stem}_x{factor}"
    n = 1
    while not _claim(target := video.with_name(f"{base}.mp4" if n == 1 else f"{base}_{n}.mp4")):
        n += 1
    return target


def _claimed(target: Path) -> Path:
    if target.suffix.lower() != ".mp4":
        raise UserError(f"out: {target} should end in .mp4; the result is always an mp4")
    if not _claim(target):
        raise UserError(f"out: {target} already exists; give another --out")
    return target


def _claim(target: Path) -> bool:
    """Create ``target`` empty and exclusively (False where it exists), so neither an earlier file
    nor a concurrent run's is overwritten; the finished mp4 replaces this placeholder."""
    try:
        with open(target, "x"):
            return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise UserError(f"out: cannot write {target}: {exc.strerror}") from None
