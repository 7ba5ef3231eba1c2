"""The ``videogen compare`` and ``videogen evaluate`` commands (registered by ``videogen.cli``).

Shared request settings use the same flag names as ``videogen generate``; encoder options say
where the learned metrics' weights are. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from videogen.cluster.cli_options import RayAddress, RayCpus, RayWorkers, command_pool
from videogen.console import err, fail, out, quiet_libraries
from videogen.errors import Cancelled, UserError
from videogen.metrics.sources import (
    AESTHETIC_CLIP_REPO,
    AESTHETIC_HEAD_ENV,
    CLIP_REPO,
    DINO_REPO,
    EncoderSources,
)

if TYPE_CHECKING:
    from videogen.compare.events import CellCallback, CellEvent
    from videogen.sampling.progress import ProgressCallback, ProgressEvent


GRID, SHARED, METRICS_PANEL = "Grid", "Settings shared by every video", "Metrics"

ClipModel = Annotated[
    str,
    typer.Option(
        "--clip-model",
        help="CLIP folder or cached Hub id (text/background/image metrics).",
        rich_help_panel=METRICS_PANEL,
    ),
]
DinoModel = Annotated[
    str,
    typer.Option(
        "--dino-model",
        help="DINO ViT folder or cached Hub id (subject consistency).",
        rich_help_panel=METRICS_PANEL,
    ),
]
AestheticClip = Annotated[
    str,
    typer.Option(
        "--aesthetic-clip-model",
        help="CLIP ViT-L/14 folder or cached Hub id for the aesthetic score.",
        rich_help_panel=METRICS_PANEL,
    ),
]
AestheticHead = Annotated[
    Path | None,
    typer.Option(
        "--aesthetic-head",
        envvar=AESTHETIC_HEAD_ENV,
        help="LAION sa_0_4_vit_l_14_linear.pth file.",
        rich_help_panel=METRICS_PANEL,
    ),
]
MetricsDevice = Annotated[
    str,
    typer.Option(
        "--metrics-device", help="auto, cpu, cuda or mps for the encoders.", rich_help_panel=METRICS_PANEL
    ),
]
Learned = Annotated[
    bool,
    typer.Option(
        "--learned-metrics/--no-learned-metrics",
        help="Try the learned metrics (CLIP, DINO, LAION).",
        rich_help_panel=METRICS_PANEL,
    ),
]


def compare_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Report folder; run again to resume.")],
    models: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated catalog ids or diffusers folders (the columns).", rich_help_panel=GRID
        ),
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option(
            help="Text file, one prompt per line (default: the built-in set).", rich_help_panel=GRID
        ),
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option(help="Image or folder of images for image-to-video models.", rich_help_panel=GRID),
    ] = None,
    seeds: Annotated[
        str, typer.Option(help="Comma-separated seeds, one video each.", rich_help_panel=GRID)
    ] = "0",
    from_dir: Annotated[
        Path | None,
        typer.Option(
            "--from-dir",
            help="Evaluate the videos (and sidecars) in this folder instead.",
            rich_help_panel=GRID,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="YAML of request fields shared by every video.", rich_help_panel=SHARED
        ),
    ] = None,
    num_frames: Annotated[int | None, typer.Option(help="Frames per video.", rich_help_panel=SHARED)] = None,
    height: Annotated[
        int | None, typer.Option(help="Pixels, a multiple of 8.", rich_help_panel=SHARED)
    ] = None,
    width: Annotated[
        int | None, typer.Option(help="Pixels, a multiple of 8.", rich_help_panel=SHARED)
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Denoising steps.", rich_help_panel=SHARED)] = None,
    guidance: Annotated[
        float | None, typer.Option(help="Classifier-free guidance scale.", rich_help_panel=SHARED)
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="ddim, dpm++, euler or unipc.", rich_help_panel=SHARED)
    ] = None,
    fps: Annotated[float | None, typer.Option(help="Playback frame rate.", rich_help_panel=SHARED)] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda or mps.", rich_help_panel=SHARED)
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help="auto, fp32, fp16 or bf16.", rich_help_panel=SHARED)
    ] = None,
    clip_model: ClipModel = CLIP_REPO,
    dino_model: DinoModel = DINO_REPO,
    aesthetic_clip_model: AestheticClip = AESTHETIC_CLIP_REPO,
    aesthetic_head: AestheticHead = None,
    metrics_device: MetricsDevice = "auto",
    learned_metrics: Learned = True,
    recompute_metrics: Annotated[
        bool,
        typer.Option(
            "--recompute-metrics", help="Evaluate finished videos again.", rich_help_panel=METRICS_PANEL
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
    ray: RayAddress = None,
    ray_workers: RayWorkers = None,
    ray_cpus_per_worker: RayCpus = 1,
) -> None:
    """Compare models on the same prompts or images and seeds: videos, metrics and an HTML report."""
    from videogen.compare.fromdir import run_from_dir
    from videogen.compare.inputs import image_files, read_prompt_file
    from videogen.compare.runner import CompareSettings, run_compare
    from videogen.request import load_config

    shared = {
        "num_frames": num_frames,
        "height": height,
        "width": width,
        "steps": steps,
        "guidance": guidance,
        "scheduler": scheduler,
        "fps": fps,
        "device": device,
        "dtype": dtype,
    }
    encoders = _sources(
        clip_model, dino_model, aesthetic_clip_model, aesthetic_head, metrics_device, learned_metrics
    )
    quiet_libraries()
    try:
        if from_dir is not None:
            if models or prompts or images or config or any(v is not None for v in shared.values()):
                raise UserError(
                    "from-dir: evaluates existing videos; leave out --models, inputs and settings"
                )
            with _progress() as (on_cell, _):
                result = run_from_dir(from_dir, out_dir, encoders, recompute_metrics, on_cell)
        else:
            if not models:
                raise UserError("models: give --models (comma-separated) or --from-dir")
            fields: dict[str, Any] = load_config(config) if config else {}
            fields.update({key: value for key, value in shared.items() if value is not None})
            settings = CompareSettings(
                models=[m.strip() for m in models.split(",") if m.strip()],
                seeds=_seeds(seeds),
                prompts=read_prompt_file(prompts) if prompts else None,
                images=image_files(images) if images else None,
                fields=fields,
                encoders=encoders,
                recompute_metrics=recompute_metrics,
            )
            pool = command_pool(ray, ray_workers, ray_cpus_per_worker)
            with _progress() as (on_cell, on_step):
                result = run_compare(settings, out_dir, on_cell, on_step, pool=pool)
    except UserError as exc:
        raise fail(str(exc)) from None
    except (Cancelled, KeyboardInterrupt):
        raise fail(
            "interrupted; finished videos are kept: run the same command again to resume", 130
        ) from None
    failures = result.failures
    if as_json:
        summary = {
            "report": str(result.report),
            "videos": len(result.records),
            "failed": [{"model": r["model"], "cell": r["cell"], "error": r.get("error")} for r in failures],
        }
        print(json.dumps(summary, indent=2))
    else:
        out.print(
            f"report: {result.report}  ({len(result.records)} videos, {len(failures)} failed)",
            highlight=False,
        )
        for record in failures:
            where = escape(f"{record['model']} {record['cell']}")
            err.print(f"[red]failed[/red] {where}: {escape(str(record.get('error')))}", highlight=False)
    if failures:
        raise typer.Exit(1)


def evaluate_command(
    video: Annotated[Path, typer.Argument(help="mp4, webm, gif or a folder of frames.")],
    prompt: Annotated[
        str | None, typer.Option(help="Prompt for text alignment (default: from the sidecar).")
    ] = None,
    image: Annotated[
        Path | None, typer.Option(help="Input image for first-frame fidelity (default: from the sidecar).")
    ] = None,
    clip_model: ClipModel = CLIP_REPO,
    dino_model: DinoModel = DINO_REPO,
    aesthetic_clip_model: AestheticClip = AESTHETIC_CLIP_REPO,
    aesthetic_head: AestheticHead = None,
    metrics_device: MetricsDevice = "auto",
    learned_metrics: Learned = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Measure one video: flicker, motion, SSIM and, when their encoders load, the learned metrics."""
    import numpy as np
    from PIL import Image

    from videogen.media import read_video
    from videogen.metrics import METRICS, Evaluator

    sources = _sources(
        clip_model, dino_model, aesthetic_clip_model, aesthetic_head, metrics_device, learned_metrics
    )
    quiet_libraries()
    try:
        frames, rate = read_video(video)
        sidecar_prompt, sidecar_image = _from_sidecar(video)
        prompt = prompt if prompt is not None else sidecar_prompt
        image = image if image is not None else sidecar_image
        still = None
        if image is not None:
            try:
                with Image.open(image) as opened:
                    still = np.asarray(opened.convert("RGB"))
            except OSError as exc:
                raise UserError(f"image: cannot read {str(image)!r}: {exc}") from None
        with err.status("measuring"):
            results = Evaluator(sources).evaluate(frames, rate, prompt, still)
    except UserError as exc:
        raise fail(str(exc)) from None
    if as_json:
        data = {
            "video": str(video),
            "frames": len(frames),
            "fps": rate,
            "prompt": prompt,
            "image": str(image) if image else None,
            "metrics": {name: result.to_json() for name, result in results.items()},
        }
        print(json.dumps(data, indent=2))
        return
    table = Table("metric", "value", "note")
    for name, result in results.items():
        unit = METRICS[name].unit
        if result.value is None:
            table.add_row(METRICS[name].label, "[dim]skipped[/dim]", escape(result.skipped or ""))
        else:
            table.add_row(METRICS[name].label, f"{result.value:.4f}", unit)
    out.print(table)


def _from_sidecar(video: Path) -> tuple[str | None, Path | None]:
    """Prompt and input image recorded by videogen beside ``video`` (<stem>.json or <stem>.sidecar.json)."""
    for sidecar in (video.with_suffix(".json"), video.with_name(f"{video.stem}.sidecar.json")):
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        request, outputs = data.get("request") or {}, data.get("outputs") or {}
        image = video.parent / outputs["input"] if "input" in outputs else None
        return request.get("prompt"), image if image and image.is_file() else None
    return None, None


def _sources(
    clip: str, dino: str, aesthetic_clip: str, aesthetic_head: Path | None, device: str, learned: bool
) -> EncoderSources:
    head = str(aesthetic_head) if aesthetic_head else None
    return EncoderSources(clip, dino, aesthetic_clip, head, device, learned)


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"seeds: {text!r} is not allowed; give whole numbers separated by commas") from None
    if not seeds or any(seed < 0 for seed in seeds):
        raise UserError(f"seeds: {text!r} is not allowed; give whole numbers >= 0 separated by commas")
    return seeds


@contextmanager
def _progress() -> Iterator[tuple[CellCallback, ProgressCallback]]:
    """A display on stderr: one bar over the grid's cells, one over the current video's steps."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err) as bar:
        cells = bar.add_task("preparing", total=None)
        steps = bar.add_task("", total=None, visible=False)

        def on_cell(event: CellEvent) -> None:
            name = f"{event.cell.model_id} {event.cell.name}" if event.cell else event.note
            bar.update(cells, description=f"{event.stage} {name}", completed=event.done, total=event.total)
            bar.update(steps, visible=event.stage == "generate", completed=0)

        def on_step(event: ProgressEvent) -> None:
            if event.stage == "denoise":
                bar.update(steps, description="  denoise", completed=event.step, total=event.total)
            else:
                bar.update(steps, description=f"  {event.stage}")

        yield on_cell, on_step
