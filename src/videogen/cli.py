"""The ``videogen`` command line. Flags carry the Request field names (``--num-frames``)."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table
from typer.models import OptionInfo

from videogen.compare.commands import compare_command, evaluate_command
from videogen.console import err, fail, out, quiet_libraries
from videogen.errors import Cancelled, UserError

if TYPE_CHECKING:
    from videogen.batch import BatchResult
    from videogen.generate import GenerationResult

app = typer.Typer(
    help="Text, image and video to video with open diffusion models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

T = TypeVar("T")
SHAPE, SAMPLING, OUTPUT, RUNTIME, MODEL = "Shape", "Sampling", "Output", "Runtime", "Model"
INPUT, SVD, SV3D = "Image / video input", "Stable Video Diffusion", "SV3D orbits"
FAST = "Fast sampling"

#: what decides a generate option whose Request field defaults to None, where "the model's" or
#: "none" would not say it
DECIDED_BY = {
    "seed": "random",
    "preset": "quality",
    "cache_interval": "1, or the preset's",
    "guidance_end": "1, or the preset's",
    "camera_path": "an even orbit",
    "elevations": "10",
    "azimuths": "the camera path's",
    "revision": "the catalog's",
}


def _version(value: bool) -> None:
    if value:
        from videogen import __version__

        out.print(f"videogen {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Text, image and video to video with open diffusion models."""


def _default_text(name: str, default: object) -> str:
    """The default ``--help`` shows for an option: its Request field's, or who decides it."""
    from dataclasses import fields

    from videogen.catalog import Defaults
    from videogen.request import Request

    field = Request.model_fields.get(name)
    value = default if field is None else field.get_default(call_default_factory=True)
    if value is None:
        model_decides = name in {f.name for f in fields(Defaults)}
        return DECIDED_BY.get(name, "the model's" if model_decides else "none")
    if isinstance(value, bool):
        return "on" if value else "off"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _show_defaults(command: Callable[..., None]) -> Callable[..., None]:
    """Show each option's default in ``--help``. The options themselves default to None, so that a
    flag left out never overrides a ``--config`` file; the default shown is the one that applies.

    The annotations are evaluated here, once, and kept evaluated, so Typer reads the same option
    objects this marks.
    """
    hints = typing.get_type_hints(command, include_extras=True)
    parameters = inspect.signature(command).parameters
    for name, hint in hints.items():
        for info in getattr(hint, "__metadata__", ()):
            if isinstance(info, OptionInfo) and "default" not in (info.help or ""):
                info.show_default = _default_text(name, parameters[name].default)
    command.__annotations__ = hints
    return command


@app.command()
@_show_defaults
def generate(
    prompt: Annotated[str | None, typer.Argument(help="What the video shows.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file of request fields; flags override it.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Catalog id (see `videogen models`) or a diffusers folder.", rich_help_panel=MODEL),
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option(help="Offer each diffusers folder under DIR by its folder name.", rich_help_panel=MODEL),
    ] = None,
    revision: Annotated[
        str | None, typer.Option(help="Hub revision of the weights.", rich_help_panel=MODEL)
    ] = None,
    variant: Annotated[
        str | None, typer.Option(help="Weights variant, e.g. fp16.", rich_help_panel=MODEL)
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(help="Start from this still image (or a folder of them).", rich_help_panel=INPUT),
    ] = None,
    video: Annotated[
        str | None,
        typer.Option(help="Video to video: mp4/webm/gif or a folder of frames.", rich_help_panel=INPUT),
    ] = None,
    strength: Annotated[
        float | None, typer.Option(help="How far from the input to go, (0, 1].", rich_help_panel=INPUT)
    ] = None,
    noise_mode: Annotated[
        str | None, typer.Option(help="independent (default), shared or mixed.", rich_help_panel=INPUT)
    ] = None,
    noise_mix: Annotated[
        float | None, typer.Option(help="Shared share of the noise variance (mixed).", rich_help_panel=INPUT)
    ] = None,
    pin_first_frame: Annotated[
        bool | None,
        typer.Option("--pin-first-frame", help="Hold frame 0 to the input.", rich_help_panel=INPUT),
    ] = None,
    fit: Annotated[
        str | None, typer.Option(help="crop (default), pad or stretch.", rich_help_panel=INPUT)
    ] = None,
    background: Annotated[
        str | None, typer.Option(help="Colour behind transparency and padding.", rich_help_panel=INPUT)
    ] = None,
    max_input_pixels: Annotated[
        int | None, typer.Option(help="Refuse larger input images.", rich_help_panel=INPUT)
    ] = None,
    upscale: Annotated[
        str | None, typer.Option(help="Then run video to video with this model.", rich_help_panel=INPUT)
    ] = None,
    upscale_strength: Annotated[
        float | None, typer.Option(help="Strength of the upscale pass.", rich_help_panel=INPUT)
    ] = None,
    motion_bucket_id: Annotated[int | None, typer.Option(help="Motion, 0..255.", rich_help_panel=SVD)] = None,
    cond_fps: Annotated[
        float | None, typer.Option(help="Frame rate the model is conditioned on.", rich_help_panel=SVD)
    ] = None,
    noise_aug_strength: Annotated[
        float | None, typer.Option(help="Noise added to the conditioning image.", rich_help_panel=SVD)
    ] = None,
    min_guidance: Annotated[
        float | None, typer.Option(help="Guidance at frame 0.", rich_help_panel=SVD)
    ] = None,
    max_guidance: Annotated[
        float | None, typer.Option(help="Guidance at the last frame.", rich_help_panel=SVD)
    ] = None,
    elevations: Annotated[
        str | None,
        typer.Option(
            "--elevation", help="Degrees: one value or one per frame, comma-separated.", rich_help_panel=SV3D
        ),
    ] = None,
    azimuths: Annotated[
        str | None,
        typer.Option("--azimuth", help="Degrees, one per frame, comma-separated.", rich_help_panel=SV3D),
    ] = None,
    camera_path: Annotated[
        str | None, typer.Option(help="orbit, wave, spiral or front-back.", rich_help_panel=SV3D)
    ] = None,
    image_frame_ratio: Annotated[
        float | None, typer.Option(help="Share of the frame the object fills.", rich_help_panel=SV3D)
    ] = None,
    remove_background: Annotated[
        bool | None, typer.Option("--remove-background/--no-remove-background", rich_help_panel=SV3D)
    ] = None,
    negative_prompt: Annotated[
        str | None, typer.Option(help="What to steer away from.", rich_help_panel=SAMPLING)
    ] = None,
    num_frames: Annotated[int | None, typer.Option(help="Frames per video.", rich_help_panel=SHAPE)] = None,
    height: Annotated[
        int | None, typer.Option(help="Pixels, a multiple of 8.", rich_help_panel=SHAPE)
    ] = None,
    width: Annotated[int | None, typer.Option(help="Pixels, a multiple of 8.", rich_help_panel=SHAPE)] = None,
    steps: Annotated[int | None, typer.Option(help="Denoising steps.", rich_help_panel=SAMPLING)] = None,
    guidance: Annotated[
        float | None, typer.Option(help="Classifier-free guidance scale.", rich_help_panel=SAMPLING)
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="ddim (default), dpm++, euler or unipc.", rich_help_panel=SAMPLING)
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of video 0; video k uses seed+k.", rich_help_panel=SAMPLING)
    ] = None,
    num_videos: Annotated[int | None, typer.Option(help="Videos to make.", rich_help_panel=SAMPLING)] = None,
    fps: Annotated[
        float | None, typer.Option(help="Playback frame rate written into the file.", rich_help_panel=OUTPUT)
    ] = None,
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="mp4, webm, gif, frames; repeatable.", rich_help_panel=OUTPUT),
    ] = None,
    watermark: Annotated[
        bool | None,
        typer.Option("--watermark/--no-watermark", help="Invisible watermark.", rich_help_panel=OUTPUT),
    ] = None,
    out_dir: Annotated[
        str | None, typer.Option("--out", help="Output folder (default: outputs).", rich_help_panel=OUTPUT)
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda or mps.", rich_help_panel=RUNTIME)
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help="auto, fp32, fp16 or bf16.", rich_help_panel=RUNTIME)
    ] = None,
    decode_chunk_size: Annotated[
        int | None,
        typer.Option(
            help="Frames decoded by the VAE at once; default: as many as fit in free memory.",
            rich_help_panel=RUNTIME,
        ),
    ] = None,
    offload: Annotated[
        str | None,
        typer.Option(
            help="CUDA: keep weights on the CPU between uses, model or sequential.", rich_help_panel=RUNTIME
        ),
    ] = None,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile",
            help="CUDA: torch.compile the UNet (the first video compiles).",
            rich_help_panel=RUNTIME,
        ),
    ] = None,
    save_latents: Annotated[
        bool | None,
        typer.Option(
            "--save-latents",
            help="Keep the final latents; `videogen decode` decodes them again.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="quality (the model's defaults), balanced or fast.", rich_help_panel=FAST),
    ] = None,
    cache_interval: Annotated[
        int | None,
        typer.Option(
            help="Run the whole UNet every N steps, its shallow path between.", rich_help_panel=FAST
        ),
    ] = None,
    guidance_end: Annotated[
        float | None,
        typer.Option(
            help="Share of the steps, from the first, that use guidance (0..1).", rich_help_panel=FAST
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout; progress on stderr.")
    ] = False,
) -> None:
    """Generate videos from a prompt."""
    given = dict(locals())  # first, so it holds the options alone
    flags = {k: v for k, v in given.items() if k not in ("config", "as_json", "models_dir") and v is not None}
    from videogen.models_dir import with_models_dir
    from videogen.request import load_config, parse_request

    try:
        for name in ("elevations", "azimuths"):
            if name in flags:
                flags[name] = _number_list(name, flags[name])
        fields: dict[str, Any] = load_config(config) if config else {}
        fields.update(flags)
        request = with_models_dir(parse_request(fields), models_dir)
        result = _run_with_progress(request)
    except UserError as exc:
        raise fail(str(exc)) from None
    except (Cancelled, KeyboardInterrupt):
        raise fail("interrupted; no partial outputs were kept", 130) from None
    if result.seed_was_random:
        err.print(f"seed: {result.seed} (random; pass --seed {result.seed} to repeat)", soft_wrap=True)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_summary(result)
    from videogen.batch import BatchResult  # noqa: F811 - the runtime import of the TYPE_CHECKING name

    if isinstance(result, BatchResult) and result.failures:
        raise typer.Exit(1)


def _print_summary(result: GenerationResult | BatchResult) -> None:
    """Output paths per video; for a folder run, also what failed and why."""
    from videogen.batch import BatchResult  # noqa: F811 - the runtime import of the TYPE_CHECKING name

    runs = result.results if isinstance(result, BatchResult) else [result]
    for run in runs:
        for video in run.videos:
            names = ", ".join(str(path) for key, path in video.files.items() if key != "sidecar")
            line = f"seed {video.seed}: {names}  ({video.timings['total_s']:.1f} s)"
            out.print(line, highlight=False, soft_wrap=True)
    failures = result.failures if isinstance(result, BatchResult) else {}
    if len(runs) > 1 or failures:
        written = sum(len(run.videos) for run in runs)
        out.print(f"{written} videos from {len(runs)} images; {len(failures)} failed", highlight=False)
    for name, reason in failures.items():
        err.print(f"[red]failed[/red] {escape(name)}: {escape(reason)}", highlight=False, soft_wrap=True)


def _number_list(field: str, text: str) -> list[float]:
    """``"0,30,60"`` -> [0.0, 30.0, 60.0], with an error naming the field."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{field}: {text!r} is not allowed; give numbers separated by commas") from None


def _run_with_progress(request):
    """Run a generation (or a folder of them) with a progress bar on stderr."""
    from videogen.batch import generate_batch, is_batch
    from videogen.generate import generate as run_generation

    if is_batch(request):
        return _with_progress(lambda on_event: generate_batch(request, progress=on_event))
    return _with_progress(lambda on_event: run_generation(request, progress=on_event))


def _with_progress(run: Callable[[Callable], T]) -> T:
    """Call ``run(on_event)`` under a rich progress bar on stderr fed by its progress events.

    Steps, rate and time left come from the denoising events alone (``steps_text``): before the
    first step there is nothing to count, so the bar shows none rather than ``0/?``.
    """
    from videogen.sampling.progress import StepRate, steps_text

    quiet_libraries()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[steps]}"),
        TimeElapsedColumn(),
    )
    rate = StepRate()
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("loading model", total=None, steps="")

        def on_event(event) -> None:
            label = f"video {event.video + 1}/{event.num_videos}: {event.stage}"
            if event.stage == "denoise":
                steps = steps_text(event, rate(event))
                bar.update(task, description=label, completed=event.step, total=event.total, steps=steps)
            else:
                bar.update(task, description=label)

        return run(on_event)


@app.command()
def decode(
    latents: Annotated[Path, typer.Argument(help="A .latents.safetensors file written by --save-latents.")],
    formats: Annotated[
        list[str] | None, typer.Option("--format", help="mp4, webm, gif, frames; repeatable.")
    ] = None,
    out_dir: Annotated[
        str | None, typer.Option("--out", help="Output folder (default: the original's).")
    ] = None,
    fps: Annotated[float | None, typer.Option(help="Playback frame rate.")] = None,
    decode_chunk_size: Annotated[int | None, typer.Option(help="Frames decoded by the VAE at once.")] = None,
    watermark: Annotated[bool | None, typer.Option("--watermark/--no-watermark")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    dtype: Annotated[str | None, typer.Option(help="auto, fp32, fp16 or bf16.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Decode saved latents again (another chunk size, format or frame rate) without denoising."""
    given = dict(locals())
    overrides = {k: v for k, v in given.items() if k not in ("latents", "as_json") and v is not None}
    from videogen.generate import decode_latents

    try:
        result = _with_progress(lambda on_event: decode_latents(latents, overrides, progress=on_event))
    except UserError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_summary(result)


@app.command()
def bench(
    model: Annotated[str, typer.Option(help="Catalog id or a diffusers folder.")] = "modelscope-t2v",
    random_weights: Annotated[
        bool,
        typer.Option(
            "--random-weights", help="The full-size architecture with random weights (no download)."
        ),
    ] = False,
    num_frames: Annotated[int | None, typer.Option(help="Frames per video.")] = None,
    height: Annotated[int | None, typer.Option(help="Pixels, a multiple of 8.")] = None,
    width: Annotated[int | None, typer.Option(help="Pixels, a multiple of 8.")] = None,
    steps: Annotated[int | None, typer.Option(help="Denoising steps.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of both sides.")] = 0,
    preset: Annotated[
        str | None, typer.Option(help="Measure a sampling preset (quality, balanced, fast).")
    ] = None,
    vs_diffusers: Annotated[
        bool, typer.Option("--vs-diffusers", help="Also run the stock diffusers pipeline, interleaved.")
    ] = False,
    repeats: Annotated[int, typer.Option(min=1, help="Rounds of runs; the report takes medians.")] = 1,
    ablate: Annotated[
        bool, typer.Option("--ablate", help="Also switch each speedup off (or on) alone.")
    ] = False,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile videogen's UNet.")] = False,
    decode_budget_mb: Annotated[
        float | None,
        typer.Option(help="Only decode random latents, in chunks that fit this many MiB; measure the peak."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, fp32, fp16 or bf16.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Measure speed and memory of a model, optionally against the stock diffusers pipeline."""
    from videogen.bench.report import print_report
    from videogen.bench.runner import BenchOptions, run_bench

    fields = {"num_frames": num_frames, "height": height, "width": width, "steps": steps, "preset": preset}
    fields = {k: v for k, v in fields.items() if v is not None} | {
        "seed": seed,
        "device": device,
        "dtype": dtype,
    }
    options = BenchOptions(
        model, random_weights, fields, vs_diffusers, repeats, ablate, compile, decode_budget_mb
    )
    quiet_libraries()
    try:
        with err.status("benchmark") as status:
            report = run_bench(options, on_run=lambda text: status.update(f"benchmark: {text}"))
    except UserError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(report, indent=2))
    elif "decode" in report:
        decode = report["decode"]
        verdict = "fits" if decode["fits"] else "does NOT fit"
        peak, planned = decode["measured_peak_mb"], decode["planned_peak_mb"]
        line = f"decode in chunks of {decode['chunk']}: peak {peak:.0f} MiB (planned {planned:.0f})"
        out.print(f"{line} {verdict} the budget of {decode['budget_mb']:.0f} MiB", highlight=False)
    else:
        print_report(report, out)


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the model catalog with defaults and whether the weights are cached."""
    from videogen.catalog import CATALOG
    from videogen.loading import is_cached

    rows = []
    for spec in CATALOG.values():
        d = spec.defaults
        rows.append(
            {
                "id": spec.id,
                "family": spec.family,
                "tasks": list(spec.tasks),
                "source": spec.source,
                "num_frames": d.num_frames,
                "height": d.height,
                "width": d.width,
                "steps": d.steps,
                "guidance": d.guidance,
                "vram_gb": spec.vram_gb,
                "license": spec.license,
                "cached": is_cached(spec),
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    # Two parts, so each fits 80 columns (the width of a pipe): the numbers, then weights and licenses.
    table = Table(*("id", "task", "frames", "size", "steps", "VRAM", "cached"), box=box.SIMPLE_HEAD)
    sources = Table("id", Column("weights, license", overflow="fold"), box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(
            row["id"],
            ",".join(row["tasks"]),
            str(row["num_frames"]),
            f"{row['width']}x{row['height']}",
            str(row["steps"]),
            f"{row['vram_gb']:g} GB",
            "yes" if row["cached"] else "no",
        )
        sources.add_row(row["id"], f"{row['source']}\nlicense: {row['license']}")
    out.print(table)
    out.print(sources)


@app.command()
def download(
    model: Annotated[str, typer.Argument(help="Catalog id.")],
    revision: Annotated[str | None, typer.Option(help="Hub revision.")] = None,
    variant: Annotated[str | None, typer.Option(help="Weights variant, e.g. fp16.")] = None,
) -> None:
    """Fetch a model's weights into the Hugging Face cache for offline use."""
    from videogen.catalog import resolve_model
    from videogen.loading import download_model

    try:
        spec = resolve_model(model)
        err.print(f"downloading {spec.source} ...")
        folder = download_model(spec, revision, variant)
    except UserError as exc:
        raise fail(str(exc)) from None
    out.print(f"{spec.id}: ready at {folder}", highlight=False)


app.command("compare")(compare_command)
app.command("evaluate")(evaluate_command)

convert_app = typer.Typer(
    help="Convert original checkpoints to videogen's diffusers layout.", no_args_is_help=True
)
app.add_typer(convert_app, name="convert")


@convert_app.command("sv3d")
def convert_sv3d(
    checkpoint: Annotated[
        Path, typer.Argument(help="sv3d_u.safetensors or sv3d_p.safetensors from stabilityai/sv3d.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (must not exist).")],
    svd_xt: Annotated[
        str, typer.Option(help="SVD-XT catalog id or folder that provides the image encoder.")
    ] = "svd-xt",
) -> None:
    """Convert an original SV3D checkpoint into a folder `--model` accepts."""
    from videogen.catalog import resolve_model
    from videogen.convert.sv3d import convert_sv3d as convert
    from videogen.loading import locate_weights

    quiet_libraries()
    try:
        if out_dir.exists():
            raise UserError(f"out: {str(out_dir)!r} already exists; choose a new folder")
        encoder_source = locate_weights(resolve_model(svd_xt))
        folder = convert(checkpoint, out_dir, encoder_source)
    except UserError as exc:
        raise fail(str(exc)) from None
    out.print(f"converted {checkpoint.name} -> {folder}", highlight=False)


@app.command()
def selftest(
    keep: Annotated[Path | None, typer.Option(help="Keep the tiny models and videos in this folder.")] = None,
) -> None:
    """Run every engine end to end on tiny random weights, offline, and check the files it writes."""
    from videogen.selftest import run_selftest

    quiet_libraries()
    results = run_selftest(keep)
    table = Table("family", "result", "seconds", "detail")
    for row in results:
        table.add_row(
            row.family,
            "[green]ok[/green]" if row.ok else "[red]FAILED[/red]",
            f"{row.seconds:.1f}",
            row.detail,
        )
    out.print(table)
    if not all(row.ok for row in results):
        raise typer.Exit(1)


def _server_defaults() -> dict[str, Any]:
    """``Settings``' defaults, shown by ``serve --help`` (reading them does not load the web stack)."""
    from dataclasses import fields

    from videogen.server.settings import Settings

    return {field.name: field.default for field in fields(Settings)}


SERVE = _server_defaults()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="Job store, uploads and outputs (default: ~/.local/share/videogen).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="e.g. postgresql+psycopg://user@host/videogen (default: SQLite in the data dir)."),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="VIDEOGEN_API_KEY", help="Require 'Authorization: Bearer KEY'.")
    ] = None,
    allowed_hosts: Annotated[
        list[str] | None,
        typer.Option(help="Also accept these Host names (comma list or repeatable; '*': any)."),
    ] = None,
    max_queue: Annotated[int, typer.Option(min=1, help="Waiting jobs before 429.")] = SERVE["max_queue"],
    preload: Annotated[list[str] | None, typer.Option(help="Load this model at start; repeatable.")] = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="Offer each diffusers-layout folder in this folder by its name.")
    ] = None,
    max_attempts: Annotated[
        int, typer.Option(min=1, help="Runs of a job cut short by crashes before it fails.")
    ] = SERVE["max_attempts"],
    lease_seconds: Annotated[
        float,
        typer.Option(min=1, help="A running job's claim; a server that dies frees its job this long after."),
    ] = SERVE["lease_seconds"],
    max_engines: Annotated[int, typer.Option(min=1, help="Models kept loaded.")] = SERVE["max_engines"],
    max_upload_bytes: Annotated[int, typer.Option(min=1)] = SERVE["max_upload_bytes"],
    max_upload_pixels: Annotated[int, typer.Option(min=1, help="Per image or video frame.")] = SERVE[
        "max_upload_pixels"
    ],
    max_upload_frames: Annotated[int, typer.Option(min=1)] = SERVE["max_upload_frames"],
    max_frames: Annotated[int, typer.Option(min=1, help="Cap on num_frames.")] = SERVE["max_frames"],
    max_side: Annotated[int, typer.Option(min=8, help="Cap on height and width.")] = SERVE["max_side"],
    max_steps: Annotated[int, typer.Option(min=1, help="Cap on steps.")] = SERVE["max_steps"],
    max_videos: Annotated[int, typer.Option(min=1, help="Cap on num_videos.")] = SERVE["max_videos"],
    max_prompt_chars: Annotated[
        int, typer.Option(min=1, help="Cap on the characters of a prompt or negative prompt.")
    ] = SERVE["max_prompt_chars"],
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Serve the web UI at /ui.")] = SERVE["ui"],
    run_worker: Annotated[
        bool,
        typer.Option("--worker/--no-worker", help="Run jobs here (--no-worker: queue them for others)."),
    ] = SERVE["run_worker"],
) -> None:
    """Serve the REST API: a job queue with history, progress events, and the output files."""
    options = dict(locals())
    import uvicorn

    from videogen.media.outputs import writable_folder
    from videogen.server import Settings, create_app
    from videogen.server.settings import default_data_dir

    quiet_libraries()
    address = options["host"], options.pop("port")
    options.update(data_dir=data_dir or default_data_dir(), preload=tuple(preload or ()))
    options.update(allowed_hosts=tuple(allowed_hosts or ()))
    try:
        settings = Settings(**options)
        writable_folder("data_dir", settings.data_dir)
        application = create_app(settings)
    except UserError as exc:
        raise fail(str(exc)) from None
    err.print(f"serving on http://{address[0]}:{address[1]}; data in {settings.data_dir}", highlight=False)
    if settings.ui and settings.api_key is not None:
        err.print("note: the web UI has no login, so it is not served when --api-key is set", highlight=False)
    uvicorn.run(application, host=address[0], port=address[1], timeout_graceful_shutdown=10)
