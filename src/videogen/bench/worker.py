"""One benchmark run in a fresh process: ``python -m videogen.bench.worker CASE.json RESULT.json``.

A fresh process per run makes its peak resident memory its own. The case names the side
("videogen": our engine with the given speedups; "diffusers": the stock pipeline), the model folder
and the resolved request; the result holds the timings, memory and the path of the frames.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from videogen import HUGE_PAGES
from videogen.bench.meter import Meter, synchronize
from videogen.engines import load_engine
from videogen.families.base import Inputs
from videogen.families.decoding import decode_bytes, decode_in_chunks, fitting_chunk, vae_class, vae_decoder
from videogen.loading import DTYPES
from videogen.memory import peak_rss_mb, peak_vram_mb, resident_mb
from videogen.request import Request
from videogen.sampling.progress import Reporter
from videogen.speedups import Speedups


@dataclass
class Case:
    """What one run does."""

    side: str
    name: str  # "videogen", "diffusers" or an ablation's name
    folder: str
    family: str
    request: dict[str, Any]  # a resolved Request
    device: str
    dtype: str
    image: str | None = None  # PNG for image-conditioned families, already at the request's size
    speedups: dict[str, Any] = field(default_factory=dict)
    frames_path: str = ""
    decode_budget_mb: float | None = None  # side "decode": decode random latents within this budget
    environment: dict[str, str] = field(default_factory=dict)  # variables the run's process starts with


def run_decode(case: Case) -> dict[str, Any]:
    """Decode random latents of the request's shape in the chunks that fit the budget; measure the peak."""
    device, dtype = torch.device(case.device), DTYPES[case.dtype]
    request = Request.model_validate(case.request)
    vae = (
        vae_class(Path(case.folder))
        .from_pretrained(case.folder, subfolder="vae", torch_dtype=dtype)
        .to(device)
        .eval()
    )
    budget = int(case.decode_budget_mb * 2**20)
    chunk = fitting_chunk(
        vae, request.num_frames, request.height, request.width, dtype, device, budget=budget
    )
    latents = torch.randn(
        request.num_frames, vae.config.latent_channels, request.height // 8, request.width // 8
    )
    before = resident_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2**20
    started = time.perf_counter()
    with torch.inference_mode():
        _, used = decode_in_chunks(vae_decoder(vae), latents.to(device, dtype), chunk)
    synchronize(device)
    peak = peak_vram_mb(device) if device.type == "cuda" else peak_rss_mb()
    return {
        "name": case.name,
        "side": "decode",
        "budget_mb": case.decode_budget_mb,
        "chunk": used,
        "planned_peak_mb": decode_bytes(vae, chunk, request.height, request.width, dtype) / 2**20,
        "measured_peak_mb": peak - before,
        "fits": peak - before <= case.decode_budget_mb,
        "decode_s": time.perf_counter() - started,
    }


def run_case(case: Case) -> dict[str, Any]:
    """Load, generate once, and report what it cost."""
    device, dtype = torch.device(case.device), DTYPES[case.dtype]
    request = Request.model_validate(case.request)
    image = Image.open(case.image).convert("RGB") if case.image else None
    meter = Meter()
    started = time.perf_counter()
    if case.side == "videogen":
        engine = load_engine(case.family, Path(case.folder), device, dtype, None, Speedups(**case.speedups))
        _instrument(meter, engine, case.family)
        loaded = time.perf_counter()
        (video,) = engine.generate(request, [request.seed], Reporter(None, None, 1), Inputs(image=image))
        frames, record = video.frames, video.record
    else:
        pipeline = _stock_pipeline(case.family, Path(case.folder), device, dtype)
        _instrument(meter, pipeline, case.family)
        loaded = time.perf_counter()
        frames, record = _run_stock(pipeline, case.family, request, image), {}
    synchronize(device)
    finished = time.perf_counter()
    np.save(case.frames_path, frames)
    return {
        "name": case.name,
        "side": case.side,
        "speedups": case.speedups if case.side == "videogen" else None,
        "huge_pages": HUGE_PAGES,
        "load_s": loaded - started,
        "encode_s": meter.seconds["encode"],
        "unet_s": meter.seconds["unet"],
        "unet_calls": meter.unet_calls,
        "unet_items": meter.unet_items,
        "unet_step_s": meter.seconds["unet"] / max(meter.unet_calls, 1),
        "decode_s": meter.seconds["decode"],
        "generate_s": finished - loaded,
        "total_s": finished - started,
        "peak_rss_mb": peak_rss_mb(),
        "peak_vram_mb": peak_vram_mb(device),
        "record": record,
        "frames_path": case.frames_path,
    }


def _instrument(meter: Meter, models: Any, family: str) -> None:
    """The same hooks on our engine and on the stock pipeline: their attributes share names."""
    if family in ("wan", "ltx"):  # the transformer(s) count as the UNet
        for denoiser in (models.transformer, getattr(models, "transformer_2", None)):
            if denoiser is not None:
                meter.time_unet(denoiser)
    else:
        meter.time_unet(models.unet)
    meter.time_method(models.vae, "decode", "decode")
    if family in ("unet3d", "wan", "ltx"):
        meter.time_method(models.text_encoder, "forward", "encode")
    else:
        meter.time_method(models.image_encoder, "forward", "encode")
        meter.time_method(models.vae, "encode", "encode")


def _stock_pipeline(family: str, folder: Path, device: torch.device, dtype: torch.dtype) -> Any:
    from diffusers import LTXPipeline, StableVideoDiffusionPipeline, TextToVideoSDPipeline, WanPipeline

    classes = {
        "unet3d": TextToVideoSDPipeline,
        "svd": StableVideoDiffusionPipeline,
        "wan": WanPipeline,
        "ltx": LTXPipeline,
    }
    cls = classes[family]
    pipeline = cls.from_pretrained(folder, torch_dtype=dtype).to(device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _run_stock(pipeline: Any, family: str, request: Request, image: Image.Image | None) -> np.ndarray:
    """The stock pipeline with the request's settings; its own defaults for everything else."""
    common = {
        "height": request.height,
        "width": request.width,
        "num_frames": request.num_frames,
        "num_inference_steps": request.steps,
        "generator": torch.Generator("cpu").manual_seed(request.seed),
        "output_type": "np",
    }
    if family == "wan":
        pipeline.scheduler = _wan_scheduler(pipeline.scheduler, request)
        return pipeline(
            request.prompt,
            negative_prompt=request.negative_prompt,
            guidance_scale=request.guidance,
            guidance_scale_2=request.guidance_2,
            **common,
        ).frames[0]
    if family == "ltx":
        return _run_ltx(pipeline, request, common)
    if family == "unet3d":
        return pipeline(
            request.prompt, negative_prompt=request.negative_prompt, guidance_scale=request.guidance, **common
        ).frames[0]
    return pipeline(
        image,
        min_guidance_scale=request.min_guidance,
        max_guidance_scale=request.max_guidance,
        fps=request.cond_fps + 1,  # diffusers conditions on fps - 1
        motion_bucket_id=request.motion_bucket_id,
        noise_aug_strength=request.noise_aug_strength,
        decode_chunk_size=request.decode_chunk_size,
        **common,
    ).frames[0]


def _run_ltx(pipeline: Any, request: Request, common: dict[str, Any]) -> np.ndarray:
    """LTXPipeline with the settings our engine reads; a custom schedule (``timesteps``) is
    LTXConditionPipeline's, as in the engine, on the same components."""
    from diffusers import LTXConditionPipeline

    from videogen.families.ltx import MAX_SEQUENCE_LENGTH

    options: dict[str, Any] = {}
    if request.timesteps is not None:  # LTXPipeline sets sigmas, which exclude timesteps
        pipeline = LTXConditionPipeline(**pipeline.components)
        pipeline.set_progress_bar_config(disable=True)
        options["timesteps"] = list(request.timesteps)
    return pipeline(
        prompt=request.prompt,  # LTXConditionPipeline's first argument is its conditions
        negative_prompt=request.negative_prompt,
        guidance_scale=request.guidance,
        guidance_rescale=request.guidance_rescale,
        decode_timestep=request.decode_timestep,
        decode_noise_scale=request.decode_noise_scale,
        frame_rate=request.fps,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        **options,
        **common,
    ).frames[0]


def _wan_scheduler(folder_scheduler: Any, request: Request) -> Any:
    """The scheduler our Wan engine makes for the request (kind and flow shift), for the stock side."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    shift = request.flow_shift if request.flow_shift is not None else folder_scheduler.config.flow_shift
    if request.scheduler == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    return folder_scheduler.from_config(folder_scheduler.config, flow_shift=shift)


def main(argv: list[str]) -> None:
    case_file, result_file = argv
    case = Case(**json.loads(Path(case_file).read_text()))
    result = run_decode(case) if case.side == "decode" else run_case(case)
    Path(result_file).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
