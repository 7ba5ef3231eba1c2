"""``videogen bench``: videogen's engine against the stock diffusers pipeline, on the same weights,
settings and seed, each run in a fresh process, the two sides interleaved."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from videogen import HUGE_PAGES_VARIABLE
from videogen.bench.flops import count_flops
from videogen.bench.random_weights import random_model
from videogen.bench.worker import Case
from videogen.catalog import ModelSpec, resolve_model
from videogen.data.stills import render_still
from videogen.errors import FieldError, UserError
from videogen.generate import library_versions
from videogen.loading import dtype_name, locate_weights, resolve_device, resolve_dtype
from videogen.media.images import fit_image
from videogen.request import Request
from videogen.resolve import resolve
from videogen.speedups import DEFAULT_SPEEDUPS, Speedups

#: Speedups switched off (or on) one at a time against videogen's defaults, to show each one's effect.
ABLATIONS: dict[str, dict[str, Any]] = {
    # the machine's default either way (``onednn_by_default``), so the ablation switches it over
    f"{'without' if DEFAULT_SPEEDUPS.onednn_linear else 'with'} onednn_linear": {
        "onednn_linear": not DEFAULT_SPEEDUPS.onednn_linear
    },
    "without fused_activation": {"fused_activation": False},
    "without release_weights": {"release_weights": False},
    "without lean_vae": {"lean_vae": False},
    "no_grad, not inference_mode": {"inference_mode": False},
    "math attention": {"attention": "math"},
    "without fused_qkv": {"fused_qkv": False},
    "without context_cache": {"context_cache": False},
    "with channels_last": {"channels_last": True},
}
#: ablations of a process-wide setting: the environment the run's process starts with
ENVIRONMENT_ABLATIONS: dict[str, dict[str, str]] = {"without huge_pages": {HUGE_PAGES_VARIABLE: "0"}}
#: the stock pipeline runs as torch runs by default, without videogen's huge-page allocation
STOCK_ENVIRONMENT = {HUGE_PAGES_VARIABLE: "0"}
#: ablations of a measure that exists in some families only
FAMILIES_OF_ABLATION = {"without lean_vae": ("wan", "ltx"), "without context_cache": ("wan", "ltx")}
#: per-run figures that are summarised (median) and compared
FIGURES = ("load_s", "encode_s", "unet_step_s", "unet_s", "decode_s", "generate_s", "total_s", "peak_rss_mb",
           "peak_vram_mb")  # fmt: skip
#: request fields the report repeats
SETTINGS = ("num_frames", "height", "width", "steps", "scheduler", "guidance", "min_guidance", "max_guidance",
            "seed", "decode_chunk_size", "preset", "cache_interval", "guidance_end", "flow_shift",
            "cache_threshold", "guidance_rescale", "timesteps", "decode_timestep", "decode_noise_scale",
            "image_cond_noise_scale")  # fmt: skip
PROMPT = "a panda eating bamboo on a rock"
STILL = "red-ball"


@dataclass
class BenchOptions:
    """What ``videogen bench`` was asked for."""

    model: str
    random_weights: bool = False
    fields: dict[str, Any] = field(default_factory=dict)  # request fields (shape, steps, seed, preset...)
    vs_diffusers: bool = False
    repeats: int = 1
    ablate: bool = False
    compile: bool = False
    #: decode random latents only, in the chunks that fit this many MiB (``--decode-budget-mb``)
    decode_budget_mb: float | None = None


def run_bench(options: BenchOptions, on_run: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark and return its report (the JSON ``--json`` prints)."""
    request, spec = _request(options)
    folder = _weights(spec, options.random_weights)
    device = resolve_device(request.device)
    dtype = resolve_dtype(request.dtype, device)
    if options.vs_diffusers and spec.orbit:
        raise FieldError("vs-diffusers", True, f"diffusers has no pipeline for {spec.id} (SV3D)")
    ours = Speedups(compile=options.compile)
    warm_page_cache(folder)
    with tempfile.TemporaryDirectory(prefix="videogen-bench-") as scratch:
        work = Path(scratch)
        base = Case("videogen", "videogen", str(folder), spec.family, request.model_dump(mode="json"),
                    str(device), dtype_name(dtype))  # fmt: skip
        if options.decode_budget_mb is not None:
            budget = options.decode_budget_mb
            decode = _run(replace(base, side="decode", name="decode", decode_budget_mb=budget), work, 0)
            settings = {name: getattr(request, name) for name in SETTINGS}
            return {"model": spec.id, "settings": settings, "device": str(device), "decode": decode}
        image = _still(request, work) if spec.family == "svd" else None
        base = replace(base, image=image, speedups=asdict(ours))
        plan = []
        for round_ in range(options.repeats):
            stock = replace(base, side="diffusers", name="diffusers", speedups={})
            pair = [base, replace(stock, environment=STOCK_ENVIRONMENT)]
            plan += pair if round_ % 2 == 0 or not options.vs_diffusers else pair[::-1]
        if not options.vs_diffusers:
            plan = [case for case in plan if case.side == "videogen"]
        if options.ablate:  # between two runs of the defaults, which they are compared with (median)
            for name, change in _ablations(spec.family).items():
                plan.append(replace(base, name=name, speedups=asdict(replace(ours, **change))))
            for name, environment in ENVIRONMENT_ABLATIONS.items():
                plan.append(replace(base, name=name, environment=environment))
            plan.append(base)
        runs = []
        for index, case in enumerate(plan):
            if on_run is not None:
                on_run(f"run {index + 1}/{len(plan)}: {case.name}")
            runs.append(_run(replace(case, frames_path=str(work / f"frames-{index}.npy")), work, index))
        report = _report(options, request, spec, folder, device, dtype, runs)
    return report


def _request(options: BenchOptions) -> tuple[Request, ModelSpec]:
    """The resolved request both sides run: text to video from PROMPT, or image to video from STILL."""
    conditioning = (
        {"image": f"{STILL}.png"} if resolve_model(options.model).family == "svd" else {"prompt": PROMPT}
    )
    resolved = resolve(Request(**{"seed": 0, **conditioning, **options.fields, "model": options.model}))
    request, spec = resolved.request, resolved.spec
    if spec.family == "svd" and request.decode_chunk_size is None:
        # both sides decode the same chunks, so their frames can be compared (stock: all at once)
        request = request.model_copy(update={"decode_chunk_size": min(14, request.num_frames)})
    return request, spec


def _weights(spec: ModelSpec, random_weights: bool) -> Path:
    if not random_weights:
        return locate_weights(spec)
    if spec.architecture is None:
        raise FieldError(
            "random-weights",
            True,
            f"{spec.id} has no full-size architecture to build random weights from; bench it on its own "
            "weights (leave out --random-weights)",
        )
    return random_model(spec.architecture)


def warm_page_cache(folder: Path) -> None:
    """Read every weight file once, so no run pays for the disk and every side starts alike.

    Weights load memory-mapped: a cold page cache would make the first run read gigabytes from disk.
    """
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".safetensors", ".bin") and path.is_file():
            with open(path, "rb") as handle:
                while handle.read(64 * 2**20):
                    pass


def _still(request: Request, work: Path) -> str:
    image = fit_image(Image.fromarray(render_still(STILL)), request.width, request.height, "crop", "white")
    path = work / "still.png"
    image.save(path)
    return str(path)


def _run(case: Case, work: Path, index: int) -> dict[str, Any]:
    case_file, result_file = work / f"case-{index}.json", work / f"result-{index}.json"
    case_file.write_text(json.dumps(asdict(case)))
    command = [sys.executable, "-m", "videogen.bench.worker", str(case_file), str(result_file)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **case.environment})
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise UserError(f"bench: the {case.name} run failed (exit {done.returncode}):\n{tail}")
    return json.loads(result_file.read_text())


def _median(runs: list[dict[str, Any]], name: str) -> float | None:
    values = [run[name] for run in runs if run.get(name) is not None]
    return statistics.median(values) if values else None


def _spread(values: list[float | None]) -> list[float] | None:
    """[min, median, max] of the values that were measured; None if none was."""
    measured = [value for value in values if value is not None]
    return [min(measured), statistics.median(measured), max(measured)] if measured else None


def _summary(runs: list[dict[str, Any]], flops: dict[str, Any], frames: int) -> dict[str, Any]:
    summary: dict[str, Any] = {name: _median(runs, name) for name in FIGURES}
    summary["spread"] = {name: _spread([run.get(name) for run in runs]) for name in FIGURES}
    summary["unet_calls"] = runs[0]["unet_calls"]
    summary["unet_evaluations"] = runs[0]["unet_items"]
    per_evaluation = flops.get("unet_evaluation_tflop")
    record = runs[0]["record"]
    # evaluations cut short (DeepCache's shallow path, Wan's First Block Cache) do not cost a full count
    shallow = record.get("unet_shallow_evaluations", 0) or record.get("transformer_skipped_evaluations", 0)
    if per_evaluation and summary["unet_s"] and not shallow:
        summary["unet_tflops"] = per_evaluation * summary["unet_evaluations"] / summary["unet_s"]
    else:
        summary["unet_tflops"] = None
    per_frame = flops.get("decode_frame_tflop")
    summary["decode_tflops"] = (
        per_frame * frames / summary["decode_s"] if per_frame and summary["decode_s"] else None
    )
    return summary


def _ratio(ours: float | None, stock: float | None) -> float | None:
    return ours / stock if ours is not None and stock else None


def _report(
    options: BenchOptions,
    request: Request,
    spec: ModelSpec,
    folder: Path,
    device: torch.device,
    dtype: torch.dtype,
    runs: list[dict[str, Any]],
) -> dict[str, Any]:
    flops = count_flops(folder, spec.family, request.num_frames, request.height, request.width)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_name.setdefault(run["name"], []).append(run)
    summaries = {name: _summary(group, flops, request.num_frames) for name, group in by_name.items()}
    report: dict[str, Any] = {
        "model": spec.id,
        "family": spec.family,
        "weights": "random" if options.random_weights else str(folder),
        "settings": {name: getattr(request, name) for name in SETTINGS},
        "device": str(device),
        "dtype": dtype_name(dtype),
        "machine": _machine(device),
        "flops": flops,
        "runs": [{k: v for k, v in run.items() if k != "frames_path"} for run in runs],
        "summary": summaries,
        "ratios": None,
        "ratio_spread": None,
        "max_abs_difference": None,
    }
    if options.vs_diffusers:
        ours, stock = summaries["videogen"], summaries["diffusers"]
        report["ratios"] = {name: _ratio(ours[name], stock[name]) for name in FIGURES}
        report["ratios"]["unet_evaluations"] = _ratio(ours["unet_evaluations"], stock["unet_evaluations"])
        # round k pairs the k-th run of each side (the rounds interleave them)
        rounds = list(zip(by_name["videogen"], by_name["diffusers"], strict=True))
        report["ratio_spread"] = {
            name: _spread([_ratio(mine.get(name), theirs.get(name)) for mine, theirs in rounds])
            for name in FIGURES
        }
        report["max_abs_difference"] = _difference(by_name["videogen"][0], by_name["diffusers"][0])
    if options.ablate:
        default = summaries["videogen"]
        report["ablations"] = {
            name: {figure: _ratio(summaries[name][figure], default[figure]) for figure in FIGURES}
            | {"max_abs_difference": _difference(by_name["videogen"][0], by_name[name][0])}
            for name in [*_ablations(spec.family), *ENVIRONMENT_ABLATIONS]
        }
    return report


def _ablations(family: str) -> dict[str, dict[str, Any]]:
    """The ablations that change something for ``family``."""
    return {
        name: change
        for name, change in ABLATIONS.items()
        if family in FAMILIES_OF_ABLATION.get(name, (family,))
    }


def _difference(first: dict[str, Any], second: dict[str, Any]) -> float:
    a, b = np.load(first["frames_path"]), np.load(second["frames_path"])
    return float(np.abs(a.astype(np.float64) - b).max()) if a.shape == b.shape else float("inf")


def _machine(device: torch.device) -> dict[str, Any]:
    return {
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "libraries": library_versions(),
    }
