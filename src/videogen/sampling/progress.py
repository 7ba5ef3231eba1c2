"""Progress events and cancellation, the one callback type every engine reports through."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from videogen.errors import Cancelled


@dataclass(frozen=True)
class ProgressEvent:
    """One denoising step done (or a stage change, with step == 0)."""

    stage: str  # "load", "encode", "denoise", "decode", "write"
    video: int  # index of the video in the batch, from 0
    num_videos: int
    step: int
    total: int
    elapsed: float  # seconds since the run started

    @property
    def eta(self) -> float | None:
        """Seconds left in this video's denoising, from the mean step time so far."""
        if self.stage != "denoise" or self.step == 0:
            return None
        return self.elapsed / self.step * (self.total - self.step)


ProgressCallback = Callable[[ProgressEvent], None]


class CancelFlag(Protocol):
    """Anything with ``is_set()``, e.g. ``threading.Event``."""

    def is_set(self) -> bool: ...


class Reporter:
    """Sends events to an optional callback and raises Cancelled when the flag is set."""

    def __init__(self, callback: ProgressCallback | None, cancel: CancelFlag | None, num_videos: int) -> None:
        self.callback = callback
        self.cancel = cancel
        self.num_videos = num_videos
        self.started = time.perf_counter()

    def __call__(self, stage: str, video: int = 0, step: int = 0, total: int = 0) -> None:
        """Report, then stop if cancelled: the next step never starts once the flag is set."""
        if self.callback is not None:
            elapsed = time.perf_counter() - self.started
            self.callback(ProgressEvent(stage, video, self.num_videos, step, total, elapsed))
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled(f"cancelled during {stage}")


class StepRate:
    """Denoising steps per second of the video being denoised, from its progress events.

    Measured from the video's first step event on, so loading and encoding never count, and
    restarted for each video.
    """

    def __init__(self) -> None:
        self._first: ProgressEvent | None = None

    def __call__(self, event: ProgressEvent) -> float | None:
        """The rate after ``event`` (a denoise event), or None until two steps have been seen."""
        first = self._first
        if first is None or first.video != event.video or event.step <= first.step:
            self._first = event
            return None
        seconds = event.elapsed - first.elapsed
        return (event.step - first.step) / seconds if seconds > 0 else None


def steps_text(event: ProgressEvent, rate: float | None) -> str:
    """``"3/25 1.52 it/s, 0:15 left"``: the steps, then (once known) the rate, as seconds per step
    when slower than one a second, and the time left."""
    text = f"{event.step}/{event.total}"
    if rate is None:
        return text
    text += f" {rate:.2f} it/s" if rate >= 1 else f" {1 / rate:.1f} s/it"
    if event.step < event.total:
        left = round((event.total - event.step) / rate)
        text += f", {left // 60}:{left % 60:02d} left"
    return text
