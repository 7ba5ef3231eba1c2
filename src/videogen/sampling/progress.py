"""Progress events and cancellation, the one callback type every engine reports through."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from videogen.errors import Cancelled

if TYPE_CHECKING:
    import torch

#: denoising steps between two previews, for callbacks that ask for them
DEFAULT_PREVIEW_EVERY = 5


@dataclass(frozen=True)
class ProgressEvent:
    """One denoising step done (or a stage change, with step == 0)."""

    stage: str  # "load", "encode", "denoise", "decode", "write"
    video: int  # index of the video in the batch, from 0
    num_videos: int
    step: int
    total: int
    elapsed: float  # seconds since the run started
    #: a JPEG of the latents after this step (sampling/preview.py), for callbacks that asked for one
    preview: bytes | None = None
    #: mean seconds per denoising step of this video so far, as the Reporter measured it
    step_seconds: float | None = None

    @property
    def eta(self) -> float | None:
        """Seconds left in this video's denoising, from the mean step time so far (without a
        measured ``step_seconds``, from all the time elapsed)."""
        if self.stage != "denoise" or self.step == 0:
            return None
        per_step = self.elapsed / self.step if self.step_seconds is None else self.step_seconds
        return per_step * (self.total - self.step)


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class WithPreviews:
    """A progress callback that also wants a preview in every ``every``-th denoising step's event
    and in the last one. Previews cost a few milliseconds each, so a plain callback gets none and
    none are made for it."""

    callback: ProgressCallback
    every: int = DEFAULT_PREVIEW_EVERY

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every: {self.every}; previews come every 1 or more steps")

    def __call__(self, event: ProgressEvent) -> None:
        self.callback(event)


class CancelFlag(Protocol):
    """Anything with ``is_set()``, e.g. ``threading.Event``."""

    def is_set(self) -> bool: ...


class Reporter:
    """Sends events to an optional callback and raises Cancelled when the flag is set.

    ``preview_every`` (None: no previews) comes from a ``WithPreviews`` callback. ``video_offset`` is
    added to the video index of every event: a chained video's segments report as its videos.
    """

    def __init__(self, callback: ProgressCallback | None, cancel: CancelFlag | None, num_videos: int) -> None:
        self.callback = callback
        self.cancel = cancel
        self.num_videos = num_videos
        self.video_offset = 0
        self.preview_every = callback.every if isinstance(callback, WithPreviews) else None
        self.started = time.perf_counter()
        self._previous = 0.0  # elapsed at the last event
        self._first: tuple[int, int, float, float] | None = None  # video, step, elapsed, elapsed before

    def __call__(
        self, stage: str, video: int = 0, step: int = 0, total: int = 0, latents: torch.Tensor | None = None
    ) -> None:
        """Report, then stop if cancelled: the next step never starts once the flag is set.

        ``latents`` are one video's after the step, (1, channels, frames, h, w) in every family.
        """
        if self.callback is not None:
            elapsed = time.perf_counter() - self.started
            per_step = self._step_seconds(stage, video, step, elapsed)
            self._previous = elapsed
            preview = self._preview(step, total, latents)
            shown = video + self.video_offset
            event = ProgressEvent(stage, shown, self.num_videos, step, total, elapsed, preview, per_step)
            self.callback(event)
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled(f"cancelled during {stage}")

    def _step_seconds(self, stage: str, video: int, step: int, elapsed: float) -> float | None:
        """Mean seconds per denoising step of ``video``: from its first step event on, and at that
        first step from the event before it, so loading, encoding and earlier videos never count."""
        if stage != "denoise" or step == 0:
            return None
        first = self._first
        if first is None or first[0] != video or step <= first[1]:
            first = self._first = (video, step, elapsed, self._previous)
        _, first_step, first_elapsed, before = first
        if step > first_step:
            return (elapsed - first_elapsed) / (step - first_step)
        return (elapsed - before) / step

    def _preview(self, step: int, total: int, latents: torch.Tensor | None) -> bytes | None:
        every = self.preview_every
        if every is None or latents is None or not (step % every == 0 or step == total):
            return None
        from videogen.sampling.preview import preview_jpeg  # torch and Pillow, only when asked

        return preview_jpeg(latents)


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
