"""A request resolved once into what the engine runs: the completed request, its model and its seed.

``resolve`` is the one place that turns what a front-end was given into a runnable request: the
input clip's length and rate read from its metadata (``with_video_facts``), the model's defaults
filled in and its limits checked (``request.resolve_request``), and the seed chosen. ``generate``
runs what it returns; the server's admission resolves the same way at submit, so a request that
cannot run is refused there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from videogen.catalog import ModelSpec, resolve_model
from videogen.errors import FieldError
from videogen.media.frames import probe_video
from videogen.request import Request, resolve_request
from videogen.sampling.seeds import pick_seed
from videogen.segments import is_chain, plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolved:
    """What the engine runs: ``request`` is complete (defaults filled, seed set, limits checked)."""

    request: Request
    spec: ModelSpec
    seed: int
    seed_was_random: bool
    #: the rate the files play at: the request's fps, times ``interpolate`` unless fps was given
    playback_fps: float


def resolve(request: Request, *, read_video: bool = True) -> Resolved:
    """Resolve ``request`` for its model; a request without a seed gets a random one.

    ``read_video=False`` leaves the input clip unread: for a request replayed from a record, whose
    clip was read when it first ran and may be gone since, and for frames handed over in memory.
    """
    fps_given = request.fps is not None  # before the input clip's rate or the model's default fills it
    if read_video:
        request = with_video_facts(request, resolve_model(request.model).limits.max_frames)
        if request.extend:
            probe_video(Path(request.extend), request.max_input_pixels)  # a video, and not too large
    request, spec = resolve_request(request)
    seed, was_random = pick_seed(request.seed)
    if is_chain(request):
        plan(request.model_copy(update={"seed": seed}), spec)  # what cannot be chained fails now
    playback = request.fps if fps_given else request.fps * request.interpolate
    return Resolved(request.model_copy(update={"seed": seed}), spec, seed, was_random, playback)


def with_video_facts(request: Request, max_frames: int) -> Request:
    """A video request's missing ``num_frames`` (all of the clip's frames) and ``fps`` (the
    clip's own rate), from the clip's metadata; frames over ``max_input_pixels`` are refused.

    Nothing is decoded, so this is cheap enough for every submit.
    """
    if not request.video:
        return request
    info = probe_video(Path(request.video), request.max_input_pixels)
    update: dict[str, object] = {}
    if request.num_frames is None:
        if info.frames > max_frames:
            raise FieldError(
                "num_frames",
                None,
                f"the video has {info.frames} frames, more than the model's {max_frames}; pass --num-frames",
            )
        update["num_frames"] = info.frames
    request = request.model_copy(update=update)
    if request.fps is None and info.fps is not None:
        try:
            request.fps = info.fps  # validated as a value given for fps would be
        except ValidationError:
            log.warning(
                "the video plays at %g fps, outside what fps takes; the model's default applies", info.fps
            )
    return request
