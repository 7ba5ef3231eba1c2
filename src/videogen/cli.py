"""The ``videogen`` command line. Flags carry the Request field names (``--num-frames``)."""

from __future__ import annotations

import inspect
import json
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

from videogen.cluster.cli_options import (
    ADDRESS_HELP,
    CPUS_HELP,
    PANEL,
    WORKERS_HELP,
    RayAddress,
    RayCpus,
    RayWorkers,
    cluster_options,
    command_pool,
)
from videogen.compare.commands import compare_command, evaluate_command
from videogen.console import err, fail, out, quiet_libraries
from videogen.errors import Cancelled, UserError
from videogen.field_options import request_fields, with_field_options
from videogen.fields import all_fields
from videogen.interpolate_command import interpolate_command
from videogen.request import GROUPS

if TYPE_CHECKING:
    from videogen.batch import BatchResult
    from videogen.cluster.pool import WorkerPool
    from videogen.generate import GenerationResult

app = typer.Typer(
    help="Text, image and video to video with open diffusion models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

T = TypeVar("T")


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


def _option(name: str, kind: type, *flags: str, default: Any = None, **settings: Any) -> inspect.Parameter:
    """One of ``generate``'s own options (not a Request field)."""
    annotation = Annotated[kind if default is not None else kind | None, typer.Option(*flags, **settings)]
    return inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation
    )


def _generate(**options: Any) -> None:
    """Generate videos from a prompt."""
    from videogen.models_dir import with_models_dir
    from videogen.request import load_config, parse_request

    config, as_json = options["config"], options["as_json"]
    try:
        fields: dict[str, Any] = load_config(config) if config else {}
        fields.update(request_fields(options))
        request = with_models_dir(parse_request(fields), options["models_dir"])
        pool = command_pool(options["ray"], options["ray_workers"], options["ray_cpus_per_worker"])
        result = _run_with_progress(request, pool)
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


#: ``generate``'s and ``extend``'s own options, before and after the request fields
_BEFORE = [
    _option(
        "config",
        Path,
        "--config",
        help="YAML file of request fields; flags override it.",
        show_default="none",
    ),
    _option(
        "models_dir",
        Path,
        "--models-dir",
        help="Offer each diffusers folder under DIR by its folder name.",
        rich_help_panel=GROUPS["inputs"],
        show_default="none",
    ),
]
_AFTER = [
    _option(
        "as_json",
        bool,
        "--json",
        default=False,
        help="Print one JSON object; progress on stderr.",
        show_default="off",
    ),
    _option("ray", str, "--ray", help=ADDRESS_HELP, rich_help_panel=PANEL, show_default="none"),
    _option("ray_workers", int, "--ray-workers", min=1, help=WORKERS_HELP, rich_help_panel=PANEL),
    _option(
        "ray_cpus_per_worker",
        int,
        "--ray-cpus-per-worker",
        default=1,
        min=1,
        help=CPUS_HELP,
        rich_help_panel=PANEL,
    ),
]

generate = app.command("generate")(with_field_options(_generate, _BEFORE, _AFTER))


def _extend(**options: Any) -> None:
    """Continue a video (any mp4, webm, gif or folder of frames): new segments after its last frames,
    in one new video; the same options as generate."""
    if options["extend"] is None:
        raise fail("extend: give the VIDEO to continue, e.g. videogen extend clip.mp4 --model svd-xt")
    _generate(**options)


extend = app.command("extend")(with_field_options(_extend, _BEFORE, _AFTER, argument="extend"))
app.command("interpolate")(interpolate_command)


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


def _run_with_progress(request, pool: WorkerPool | None = None):
    """Run a generation (or a folder of them) with a progress bar on stderr, here or on a pool."""
    from videogen.batch import generate_batch, is_batch
    from videogen.generate import generate as run_generation

    if is_batch(request):
        return _with_progress(lambda on_event: generate_batch(request, progress=on_event, pool=pool))
    if pool is not None:
        return _with_progress(lambda on_event: pool.run_retrying(request, on_event))
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
def fields(
    model: Annotated[
        str | None, typer.Option(help="Only the fields this model reads, with its defaults.")
    ] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="The reference as Markdown.")] = False,
) -> None:
    """The request fields: YAML keys, REST JSON keys, and (with dashes) the flags of `generate`."""
    from videogen.catalog import resolve_model
    from videogen.field_reference import markdown as reference
    from videogen.field_reference import value_text
    from videogen.fields import fields_of_kind, grouped

    if markdown:
        print(reference(), end="")
        return
    try:
        spec = resolve_model(model) if model else None
    except UserError as exc:
        raise fail(str(exc)) from None
    infos = fields_of_kind(spec.kind) if spec else list(all_fields().values())
    for group, members in grouped(infos).items():
        table = Table("field", "takes", "default", Column("meaning", overflow="fold"), box=box.SIMPLE_HEAD)
        for info in members:
            takes = value_text(info, spec.kind if spec else None).replace("\\|", "|").replace("`", "")
            table.add_row(info.name, escape(takes), escape(info.default_text(spec)), info.description)
        out.print(f"[bold]{GROUPS[group]}[/bold]")
        out.print(table)


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
    ray: RayAddress = None,
    ray_workers: RayWorkers = None,
    ray_cpus_per_worker: RayCpus = 1,
) -> None:
    """Serve the REST API: a job queue with history, progress events, and the output files."""
    options = dict(locals())
    import uvicorn

    from videogen.media.outputs import writable_folder
    from videogen.server import Settings, create_app
    from videogen.server.settings import default_data_dir

    quiet_libraries()
    address = options["host"], options.pop("port")
    ray_options = options.pop("ray"), options.pop("ray_workers"), options.pop("ray_cpus_per_worker")
    options.update(data_dir=data_dir or default_data_dir(), preload=tuple(preload or ()))
    options.update(allowed_hosts=tuple(allowed_hosts or ()))
    try:
        settings = Settings(**options, ray=cluster_options(*ray_options))
        writable_folder("data_dir", settings.data_dir)
        if settings.ray is not None and settings.run_worker:
            from videogen.cluster.connection import connect

            connect(settings.ray)  # a wrong address or a missing extra fails here, in one line
        application = create_app(settings)
    except UserError as exc:
        raise fail(str(exc)) from None
    err.print(f"serving on http://{address[0]}:{address[1]}; data in {settings.data_dir}", highlight=False)
    if settings.ui and settings.api_key is not None:
        err.print("note: the web UI has no login, so it is not served when --api-key is set", highlight=False)
    uvicorn.run(application, host=address[0], port=address[1], timeout_graceful_shutdown=10)
