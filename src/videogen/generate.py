"""The one front door for generation: Request in, files and a record out.

Every front-end (CLI, server, compare) calls ``generate``. It resolves the request once
(``resolve``), loads (or reuses) the engine, runs it, and hands the frames to the media layer,
which writes the files and a JSON sidecar per video.
"""

from __future__ import annotations

import json
import logging
import platform
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videogen import __version__
from videogen.catalog import ModelSpec
from videogen.engines import ENGINES, Engine, EngineCache
from videogen.errors import FieldError, UserError
from videogen.families.base import GeneratedVideo, Inputs
from videogen.families.undecoded import DecodeFailed
from videogen.inputs import fit_frames, load_inputs
from videogen.loading import dtype_name, locate_weights, resolve_device, resolve_dtype
from videogen.media import to_uint8, write_outputs
from videogen.media.interpolation import interpolate_frames
from videogen.media.latents import read_latents
from videogen.media.outputs import output_base, writable_folder
from videogen.media.streaming import Mp4Stream
from videogen.media.watermark import METHOD, WATERMARK_MESSAGE, embed_watermark, watermark_skip_reason
from videogen.memory import peak_rss_mb, peak_vram_mb
from videogen.request import Request, parse_request, replayable
from videogen.resolve import Resolved, resolve
from videogen.sampling.progress import CancelFlag, ProgressCallback, Reporter
from videogen.sampling.seeds import video_seeds
from videogen.segments import Chain, is_chain, plan
from videogen.speedups import Speedups, check_compile

log = logging.getLogger(__name__)

LIBRARIES = ("torch", "diffusers", "transformers", "huggingface_hub", "av", "numpy", "pillow")


@dataclass
class VideoOutput:
    """The files written for one video and how it was made."""

    model: str
    seed: int
    files: dict[str, Path]
    timings: dict[str, float]


@dataclass
class GenerationResult:
    """Everything a front-end reports back after a run (upscaled videos follow the originals)."""

    request: Request
    seed: int
    seed_was_random: bool
    videos: list[VideoOutput] = field(default_factory=list)

    def to_json(self) -> dict:
        """A JSON-ready summary: output paths, seeds and timings."""
        return {
            "model": self.request.model,
            "seed": self.seed,
            "seed_was_random": self.seed_was_random,
            "videos": [
                {
                    "model": v.model,
                    "seed": v.seed,
                    "files": {k: str(p) for k, p in v.files.items()},
                    "timings": v.timings,
                }
                for v in self.videos
            ],
        }


def generate(
    request: Request,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    engines: EngineCache = ENGINES,
) -> GenerationResult:
    """Run one request end to end and write its outputs (and, with ``upscale``, the upscaled ones)."""
    started = time.perf_counter()
    resolved = resolve(request)
    request = resolved.request
    report = Reporter(progress, cancel, request.num_videos)
    writable_folder("out_dir", request.out_dir)  # before the compute, not after it
    inputs, input_record = load_inputs(request, resolved.spec)
    run = _Run(resolved, engines, report, started)
    if is_chain(request):
        result = GenerationResult(
            request=request, seed=resolved.seed, seed_was_random=resolved.seed_was_random
        )
        result.videos = [_chained(run, inputs, {"inputs": input_record})]
        return result
    try:
        videos = run.generate(inputs, video_seeds(resolved.seed, request.num_videos))
    except DecodeFailed as failed:
        raise run.keep_undecoded(failed, {"inputs": input_record}, input_image_of(inputs)) from failed.cause
    result = GenerationResult(request=request, seed=resolved.seed, seed_was_random=resolved.seed_was_random)
    input_image = input_image_of(inputs)
    result.videos = [
        run.write(video, index, {"inputs": input_record}, input_image) for index, video in enumerate(videos)
    ]
    if request.upscale:
        result.videos += [
            _upscale(run, video, output, engines) for video, output in zip(videos, result.videos, strict=True)
        ]
    return result


def decode_latents(
    path: Path,
    overrides: dict[str, Any],
    progress: ProgressCallback | None = None,
    engines: EngineCache = ENGINES,
) -> GenerationResult:
    """Decode a ``save_latents`` file again and write the video, with request fields overridden
    (formats, out_dir, fps, decode_chunk_size, watermark, device, dtype)."""
    started = time.perf_counter()
    tensors, sidecar = read_latents(path)
    fields = {**replayable(sidecar["request"]), **overrides, "save_latents": False}
    resolved = resolve(parse_request(fields), read_video=False)  # the input clip may be gone by now
    report = Reporter(progress, None, 1)
    writable_folder("out_dir", resolved.request.out_dir)
    run = _Run(resolved, engines, report, started)
    engine = run.engine()
    report("decode")
    decode_started = time.perf_counter()
    with engine.speedups.running():  # the grad-free mode the generation decoded in
        frames, chunk = engine.decode_saved(tensors, resolved.request.decode_chunk_size)
    record = {**sidecar.get("record", {}), "decode_chunk_size": chunk}
    timings = {"decode_s": time.perf_counter() - decode_started}
    video = GeneratedVideo(frames=frames, seed=sidecar["seed"], timings=timings, record=record)
    output = run.write(video, 0, {"decoded_from": Path(path).name})
    return GenerationResult(request=resolved.request, seed=video.seed, seed_was_random=False, videos=[output])


def _upscale(first: _Run, video: GeneratedVideo, output: VideoOutput, engines: EngineCache) -> VideoOutput:
    """Video to video with the upscale model at its own size (the Zeroscope 576w -> XL recipe)."""
    fields = first.request.model_dump(
        exclude={"height", "width", "upscale", "upscale_strength", "image", "pin_first_frame"}
    )
    fields.update(model=first.request.upscale, strength=first.request.upscale_strength, seed=video.seed)
    # The input is the first video (its frames are handed over as they are; the file is its record).
    written = next(path for kind, path in output.files.items() if kind in first.request.formats)
    fields.update(num_videos=1, fit="stretch", video=str(written))
    resolved = resolve(Request(**fields), read_video=False)  # the first video's frames are handed over
    frames = fit_frames(to_uint8(video.frames), resolved.request)
    run = _Run(resolved, engines, first.report, first.started)
    (upscaled,) = run.generate(Inputs(video=frames), [video.seed])
    source = {"upscaled_from": {"model": first.spec.id, "file": output.files["sidecar"].name}}
    return run.write(upscaled, 0, source)


def _chained(run: _Run, inputs: Inputs, extra: dict) -> VideoOutput:
    """A chained video (``segments``, or ``extend``), encoded frame by frame as it is made."""
    request = run.request
    chain = Chain(run.engine(), request, run.report, plan(request, run.spec), inputs)
    run.report.num_videos = len(chain.plan.seeds) + (request.extend is not None)
    staging = Path(request.out_dir) / f".tmp-chain-{secrets.token_hex(6)}.mp4"
    watermark: dict[str, object] | None = None
    pixels = (to_uint8(frame[None])[0] for frame in chain.frames())
    with Mp4Stream(staging, run.playback_fps, mp4_metadata(request, run.spec, request.seed)) as stream:
        for frame in interpolate_frames(pixels, request.interpolate):
            if watermark is None:  # decided once, on the first frame (every frame has its size)
                marked, watermark = apply_watermark(frame[None], bool(request.watermark))
            else:
                marked = embed_watermark(frame[None]) if watermark["embedded"] else frame[None]
            stream.write(marked[0])
    plan_record = {
        "overlap": chain.plan.overlap,
        "continues_by": chain.plan.by,
        "colour_match": request.colour_match,
    }
    record = {"segments": chain.segments, **plan_record}
    empty = np.zeros((0, request.height, request.width, 3), np.uint8)
    video = GeneratedVideo(frames=empty, seed=request.seed, timings=chain.timings, record=record)
    return run.write(video, 0, extra, input_image_of(inputs), encoded={"mp4": staging}, watermark=watermark)


def runtime_device(request: Request) -> torch.device:
    """The device the request runs on, with the fields that depend on it checked against it."""
    device = resolve_device(request.device)
    if request.offload is not None and device.type != "cuda":
        raise FieldError("offload", request.offload, f"offloading needs a CUDA device, not {device}")
    check_compile(request.compile, device)
    return device


class _Run:
    """One model's part of a generation: resolve device and weights, run the engine, write files."""

    def __init__(self, resolved: Resolved, engines: EngineCache, report: Reporter, started: float):
        self.request, self.spec = resolved.request, resolved.spec
        self.playback_fps = resolved.playback_fps
        self.engines, self.report, self.started = engines, report, started
        self.device = runtime_device(self.request)
        self.dtype = resolve_dtype(self.request.dtype, self.device)
        self.speedups = Speedups(
            compile=self.request.compile,
            offload=self.request.offload,
            text_encoder_device=self.request.text_encoder_device,
            weights_dtype=self.request.weights_dtype,
        )
        self.load_seconds = 0.0

    def engine(self) -> Engine:
        """The loaded (or cached) engine for this run's model, device, dtype and speedups."""
        self.report("load")
        folder = locate_weights(self.spec, self.request.revision, self.request.variant)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        load_started = time.perf_counter()
        engine = self.engines.get(
            self.spec.family, folder, self.device, self.dtype, self.request.variant, self.speedups
        )
        self.load_seconds = time.perf_counter() - load_started
        return engine

    def generate(self, inputs: Inputs, seeds: list[int]) -> list[GeneratedVideo]:
        return self.engine().generate(self.request, seeds, self.report, inputs)

    def write(
        self,
        video: GeneratedVideo,
        index: int,
        extra: dict,
        input_image: np.ndarray | None = None,
        formats: list[str] | None = None,
        encoded: dict[str, Path] | None = None,
        watermark: dict[str, object] | None = None,
    ) -> VideoOutput:
        """Write one video's files and sidecar (interpolated, then watermarked, when the request asks),
        in ``formats`` (default: the request's; none for latents alone). ``encoded`` are formats
        already written (with their ``watermark`` record), which are only moved into place."""
        self.report("write", index)
        request, spec = self.request, self.spec
        formats = request.formats if formats is None else formats
        frames = to_uint8(video.frames)
        if encoded is None:
            if request.interpolate > 1 and formats:
                frames = np.stack(list(interpolate_frames(frames, request.interpolate)))
            frames, watermark = apply_watermark(frames, bool(request.watermark) and bool(formats))
        timings = {"load_s": self.load_seconds, **video.timings}
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        named_after = output_base(request.prompt, request.image or request.video or request.extend, spec.id)
        base = f"{stamp}_{named_after}_s{video.seed}"
        if "upscaled_from" in extra:
            base += "_upscaled"
        sidecar = {
            "videogen_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "request": request.model_dump(mode="json"),
            "video_index": index,
            "seed": video.seed,
            "model": {
                "id": spec.id,
                "family": spec.family,
                "source": spec.source,
                "repo_id": spec.repo_id,
                "revision": request.revision,
                "variant": request.variant,
            },
            **extra,
            "device": str(self.device),
            "device_name": device_name(self.device),
            "dtype": dtype_name(self.dtype),
            "fps": self.playback_fps,
            "record": video.record,
            "watermark": watermark,
            "timings": timings,
            "peak_memory_mb": peak_memory_mb(self.device),
            "libraries": library_versions(),
        }
        write_started = time.perf_counter()
        files = write_outputs(
            frames,
            formats,
            Path(request.out_dir),
            base,
            self.playback_fps,
            sidecar,
            mp4_metadata=mp4_metadata(request, spec, video.seed),
            input_image=input_image,
            latents=video.latents,
            encoded=encoded,
        )
        timings["write_s"] = time.perf_counter() - write_started
        timings["total_s"] = time.perf_counter() - self.started
        return VideoOutput(model=spec.id, seed=video.seed, files=files, timings=timings)

    def keep_undecoded(self, failed: DecodeFailed, extra: dict, input_image: np.ndarray | None) -> UserError:
        """Write the videos finished before a failed decode and the latents of the one that failed
        (whether or not the request asked to save latents); return the error that says where they are."""
        for index, video in enumerate(failed.finished):
            self.write(video, index, extra, input_image)
        output = self.write(failed.undecoded, failed.index, extra, formats=[])
        return UserError(failed.advice(str(output.files["latents"])))


def input_image_of(inputs: Inputs) -> np.ndarray | None:
    """The input image as the files beside a video keep it."""
    return None if inputs.image is None else np.asarray(inputs.image)


def apply_watermark(frames: np.ndarray, wanted: bool) -> tuple[np.ndarray, dict[str, object]]:
    """Embed the invisible watermark when wanted and the frames can hold it; say what was done."""
    if not wanted:
        return frames, {"embedded": False, "reason": "turned off"}
    reason = watermark_skip_reason(frames.shape[1], frames.shape[2])
    if reason is not None:
        log.warning(reason)
        return frames, {"embedded": False, "reason": reason}
    return embed_watermark(frames), {"embedded": True, "method": METHOD, "message": f"{WATERMARK_MESSAGE:#x}"}


def device_name(device: torch.device) -> str:
    """The accelerator's or processor's name, for the sidecar."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()


def mp4_metadata(request: Request, spec: ModelSpec, seed: int) -> dict[str, str]:
    """The key fields, carried inside the video file itself."""
    key_fields = {
        "model": spec.id,
        "seed": seed,
        "steps": request.steps,
        "guidance": request.guidance,
        "min_guidance": request.min_guidance,
        "max_guidance": request.max_guidance,
        "scheduler": request.scheduler,
        "num_frames": request.num_frames,
        "fps": request.fps,
    }
    used = {name: value for name, value in key_fields.items() if value is not None}
    return {
        "title": request.prompt or "",
        "comment": json.dumps(used, separators=(",", ":")),
        "encoder": f"videogen {__version__}",
    }


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process and, on CUDA, peak allocated VRAM."""
    peak = {"rss": peak_rss_mb()}
    if device.type == "cuda":
        peak["vram"] = peak_vram_mb(device)
    return peak


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide the output, for the sidecar."""
    versions = {"python": sys.version.split()[0], "videogen": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
