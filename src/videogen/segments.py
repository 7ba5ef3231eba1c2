"""Long videos: segments chained into one video, each continuing from where the one before ends.

A chain's first segment is the request as it is (or, with ``extend``, an existing video fitted to
the size). Every later segment continues the one before it over ``overlap`` shared frames:

- models that take a video (ModelScope/Zeroscope, Wan 2.1 text to video, LTX-Video) continue by
  video to video from a clip of the previous segment's last ``overlap`` frames, its last frame held
  for the rest, at ``segment_strength``;
- image-to-video models (SVD, Wan I2V and TI2V) start from the previous segment's frame where the
  overlap begins.

The shared frames are blended from the old segment into the new one (a linear cross-fade whose
first frame is the old segment's, so the seam is continuous), after the new segment's colours have
been matched to the old one's over those frames (``media.colour``). Each segment has its own seed
(the request's seed + its index) and, with ``segment_prompts``, its own prompt, which travels from
the previous segment's over the shared frames (``sampling.prompt_travel``; models without a prompt,
SVD, ignore it). With
``anchor_image`` an image-to-video segment keeps the input image's identity (``Inputs.anchor``).

A continuation is handed pixels, never the previous segment's latents, on purpose: colour matching
and the cross-fade work on decoded frames, and a segment that started from the uncorrected latents
would bring back the drift the matching removed; SVD is conditioned on the latent of the frame with
noise added in pixel space; and the causal video VAEs of Wan and LTX-Video encode a first latent frame
from one frame alone, while a segment's last latent frame stands for 4 or 8 frames given all before
them, so it is not a start those models can take.

Frames are produced and handed on one segment at a time (``Chain.frames`` is a generator), so a
chain of any length holds one segment and the shared frames in memory, not the whole video.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from videogen.catalog import ModelSpec
from videogen.engines import Engine
from videogen.errors import FieldError
from videogen.families import KINDS
from videogen.families.base import Inputs
from videogen.media.colour import match_colours
from videogen.media.frames import iter_frames
from videogen.media.images import fit_image
from videogen.request import Request
from videogen.sampling.progress import Reporter
from videogen.sampling.prompt_travel import blend_weights

#: frames two segments share when left to the model: a video continuation needs a few frames of
#: motion to go on from, an image continuation has only its one frame
DEFAULT_OVERLAP = {"video": 4, "image": 1}
DEFAULT_STRENGTH = 0.8
#: kinds whose video cannot go on from its end, and why
CANNOT_CONTINUE = {
    "sv3d_u": "an SV3D orbit is one turn around the object",
    "sv3d_p": "an SV3D orbit is one turn around the object",
    "wan_flf2v": "a first-and-last-frame model ends every segment on last_image",
}


def is_chain(request: Request) -> bool:
    """Whether the request makes a chained video (several segments, or a video extended)."""
    return request.segments > 1 or request.extend is not None


@dataclass(frozen=True)
class Plan:
    """How a resolved request's segments continue one another."""

    by: str  # "video" or "image"
    overlap: int
    #: the prompt and seed of every segment generated (an extended video is not one of them)
    prompts: list[str | None]
    seeds: list[int]
    strength: float


def plan(request: Request, spec: ModelSpec) -> Plan:
    """Check that ``request`` (resolved) can be chained and say how; FieldError naming the field if not."""
    count = request.segments
    if spec.kind in CANNOT_CONTINUE:
        raise FieldError("segments", count, f"{spec.id} cannot be chained: {CANNOT_CONTINUE[spec.kind]}")
    taken = KINDS[spec.kind].taken
    by = "video" if "video" in taken else "image" if "image" in taken else None
    if by is None:
        raise FieldError("segments", count, f"{spec.id} takes neither an image nor a video to continue from")
    refusals = {
        "num_videos": (request.num_videos > 1, "a chained video is made one at a time; give 1"),
        "keyframe": (bool(request.keyframe), "keyframes belong to one segment; chain without them"),
        "last_image": (request.last_image is not None, "a chain does not end on a given frame"),
        "upscale": (request.upscale is not None, "upscale a chained video afterwards, as a video"),
        "save_latents": (request.save_latents, "a chained video has no single set of latents"),
        "formats": (request.formats != ["mp4"], "a chained video is encoded as it is made: mp4 only"),
    }
    for name, (refused, why) in refusals.items():
        if refused:
            raise FieldError(name, getattr(request, name), f"not with segments or extend: {why}")
    if request.anchor_image and request.image is None:
        raise FieldError("anchor_image", True, "needs image: the image whose identity every segment keeps")
    overlap = request.overlap or DEFAULT_OVERLAP[by]
    if overlap >= request.num_frames:
        raise FieldError("overlap", overlap, f"fewer than the {request.num_frames} frames of a segment")
    prompts: list[str | None] = list(request.segment_prompts or [request.prompt] * count)
    if len(prompts) != count:
        raise FieldError(
            "segment_prompts",
            request.segment_prompts,
            f"give one prompt per segment: {count}, not {len(prompts)}",
        )
    seeds = [request.seed + index for index in range(count)]
    return Plan(by, overlap, prompts, seeds, request.segment_strength or DEFAULT_STRENGTH)


@dataclass
class Joiner:
    """Joins segments (float frames in [0, 1]) into one stream of frames, keeping the last
    ``overlap`` frames back to blend them with the next segment."""

    overlap: int
    colour_match: bool
    tail: np.ndarray | None = None
    written: int = 0

    def first(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """The first segment, frame by frame (an extended video of any length streams through)."""
        held: deque[np.ndarray] = deque(maxlen=self.overlap)
        for frame in frames:
            if len(held) == self.overlap:
                yield self._out(held[0])
            held.append(frame)
        if len(held) < self.overlap:
            raise FieldError(
                "overlap", self.overlap, f"more than the {len(held)} frames of the video continued"
            )
        self.tail = np.stack(held)

    def add(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        """A later segment, whose first ``overlap`` frames are the same moments as the held ones."""
        assert self.tail is not None, "first() comes first"
        shared = self.overlap
        if self.colour_match:
            match_colours(frames, source=frames[:shared].copy(), reference=self.tail)
        for old, new, weight in zip(self.tail, frames[:shared], blend_weights(shared), strict=True):
            yield self._out((1 - weight) * old + weight * new)
        for frame in frames[shared:-shared]:
            yield self._out(frame)
        self.tail = frames[-shared:].copy()  # a view would keep the whole segment alive

    def finish(self) -> Iterator[np.ndarray]:
        for frame in self.tail if self.tail is not None else ():
            yield self._out(frame)
        self.tail = None

    def _out(self, frame: np.ndarray) -> np.ndarray:
        """A frame handed on: a copy, since a row of a segment would keep the whole segment alive in
        whoever holds on to it (the interpolator keeps the frame before)."""
        self.written += 1
        return np.array(frame, dtype=np.float32)


@dataclass
class Chain:
    """One chained video: ``frames()`` makes it; ``segments`` then records each segment."""

    engine: Engine
    request: Request
    report: Reporter
    plan: Plan
    first_inputs: Inputs
    segments: list[dict[str, object]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def frames(self) -> Iterator[np.ndarray]:
        """The video's frames, float RGB in [0, 1], made segment by segment as they are pulled."""
        joiner = Joiner(self.plan.overlap, self.request.colour_match)
        generated = range(len(self.plan.seeds))
        if self.request.extend is not None:
            start = joiner.written
            yield from joiner.first(self._extended())
            self.segments.append(
                {
                    "index": 0,
                    "extended": Path(self.request.extend).name,
                    "frames": [start, joiner.written + self.plan.overlap],
                }
            )
        else:
            frames = self._generate(0, self.first_inputs)
            count = len(frames)
            yield from joiner.first(iter(frames))
            del frames  # while the next segment is made, only the (copied) shared frames are kept
            self._record(0, 0, count, None)
            generated = range(1, len(self.plan.seeds))
        for index in generated:
            start = joiner.written
            inputs = self._continuation(joiner.tail, index)
            frames = self._generate(index, inputs)
            count = len(frames)
            yield from joiner.add(frames)
            del frames
            self._record(index, start, start + count, self.plan.by, inputs)
        yield from joiner.finish()

    def _generate(self, index: int, inputs: Inputs) -> np.ndarray:
        plan, first = self.plan, index == 0 and self.request.extend is None
        update: dict[str, object] = {"prompt": plan.prompts[index], "seed": plan.seeds[index]}
        if not first and plan.by == "video":
            update["strength"] = plan.strength
        request = self.request.model_copy(update=update)
        self.report.video_offset = len(self.segments)
        (video,) = self.engine.generate(request, [plan.seeds[index]], self.report, inputs)
        for name, seconds in video.timings.items():
            self.timings[name] = self.timings.get(name, 0.0) + seconds
        return video.frames

    def _continuation(self, tail: np.ndarray, index: int) -> Inputs:
        """The next segment's input: the shared frames as a clip (the last one held), or the first
        shared frame as its image."""
        pixels = np.round(np.clip(tail, 0, 1) * 255).astype(np.uint8)
        travel = {
            "previous_prompt": self.plan.prompts[index - 1] if index > 0 else None,
            "travel_frames": len(pixels),
        }
        if self.plan.by == "image":
            anchor = self.first_inputs.image if self.request.anchor_image else None
            return Inputs(image=Image.fromarray(pixels[0]), anchor=anchor, **travel)
        held = np.repeat(pixels[-1:], self.request.num_frames - len(pixels), axis=0)
        return Inputs(video=np.concatenate([pixels, held]), **travel)

    def _extended(self) -> Iterator[np.ndarray]:
        """The video being extended, fitted to the request's size, frame by frame."""
        request = self.request
        for _, image in iter_frames(Path(request.extend), max_pixels=request.max_input_pixels):
            fitted = fit_image(image, request.width, request.height, request.fit, request.background)
            yield np.asarray(fitted, dtype=np.float32) / 255.0

    def _record(self, index: int, start: int, end: int, by: str | None, inputs: Inputs | None = None) -> None:
        """The sidecar's entry for a segment; one whose prompt travels says from which prompt, over how
        many shared frames."""
        prompt = self.plan.prompts[index]
        entry: dict[str, object] = {
            "index": len(self.segments),
            "seed": self.plan.seeds[index],
            "prompt": prompt,
            "frames": [start, end],
            "continues_by": by,
        }
        if inputs is not None and inputs.previous_prompt not in (None, prompt):
            entry["prompt_travel"] = {"from": inputs.previous_prompt, "frames": inputs.travel_frames}
        self.segments.append(entry)
