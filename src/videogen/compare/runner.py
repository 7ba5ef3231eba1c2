"""``videogen compare``: the grid models x inputs x seeds through ``generate``, then metrics and the report.

Every cell goes through the same front door as ``videogen generate`` (same Request schema, same
engines). A cell's record is written once its video is in place, so an interrupted run picks up
where it stopped: cells whose record says "ok" for the same settings are not made again, and
cells that have a video but no metrics are only evaluated.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import threading
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videogen.catalog import ModelSpec, resolve_model
from videogen.cluster.fanout import fan_out
from videogen.compare.cells import Cell, model_labels, read_record, unique_folders, write_record
from videogen.compare.evaluation import evaluate_records
from videogen.compare.events import CellCallback, CellEvent
from videogen.compare.facts import run_facts
from videogen.compare.inputs import GridInput, grid_inputs, stage_images
from videogen.compare.report import write_report
from videogen.data import default_prompts, default_stills
from videogen.engines import ENGINES, EngineCache
from videogen.errors import Cancelled, UserError
from videogen.generate import VideoOutput, generate
from videogen.loading import locate_weights
from videogen.memory import reset_peak_rss
from videogen.metrics import EncoderSources, Evaluator
from videogen.request import parse_request, taken_fields
from videogen.resolve import resolve
from videogen.sampling.progress import CancelFlag, ProgressCallback

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from videogen.cluster.pool import WorkerPool

#: Request fields compare sets per cell; shared settings may not hold them.
PER_CELL_FIELDS = ("model", "prompt", "image", "video", "seed", "num_videos", "out_dir", "formats", "upscale")
#: generate's file kinds -> the record's file keys and the cell's file names (<cell>.mp4, ...).
FILE_NAMES = {
    "mp4": ("video", ".mp4"),
    "sidecar": ("sidecar", ".sidecar.json"),
    "input": ("input", "_input.png"),
}

#: A record's note where its peak RAM could not be measured for that video alone.
NO_PEAK_RESET = (
    "not measured: this system cannot restart the process's peak resident memory "
    "(Linux's /proc/self/clear_refs), so it would include the models run before"
)


@dataclass
class CompareSettings:
    """What to compare. ``prompts`` and ``images`` both None means the default set for the models."""

    models: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    prompts: list[str] | None = None
    images: list[Path | Traversable] | None = None
    #: request fields every cell shares (steps, num_frames, height, width, device, ...)
    fields: dict[str, Any] = field(default_factory=dict)
    encoders: EncoderSources = field(default_factory=EncoderSources)
    #: evaluate every video again (e.g. after adding encoder weights), not only those without metrics
    recompute_metrics: bool = False


@dataclass
class CompareResult:
    """The records of every cell (one per video) and the report's index.html."""

    out: Path
    records: list[dict[str, Any]]
    report: Path

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [record for record in self.records if record.get("status") != "ok"]


def run_compare(
    settings: CompareSettings,
    out: Path,
    on_cell: CellCallback | None = None,
    on_step: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    engines: EngineCache = ENGINES,
    pool: WorkerPool | None = None,
) -> CompareResult:
    """Run (or resume) a comparison into ``out`` and write its report there.

    With a ``pool`` the cells run on its actors, as many at once as it has; the metrics and the
    report are made here afterwards, as without one.
    """
    if not settings.models:
        raise UserError("models: give at least one model")
    if not settings.seeds:
        raise UserError("seeds: give at least one seed")
    seeds = list(dict.fromkeys(settings.seeds))
    shared = set(settings.fields) & set(PER_CELL_FIELDS)
    if shared:
        raise UserError(f"{', '.join(sorted(shared))}: set per cell by compare; leave it out of the settings")
    models = _models(settings.models)
    specs = list(models.values())
    labels = model_labels([(spec.id, _model_source(spec)) for spec in specs])
    evaluator = Evaluator(settings.encoders)
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(settings, specs, out)
    cells: list[tuple[Cell, ModelSpec]] = [
        (Cell(model, label, folder, row, seed), spec)
        for (model, spec), label, folder in zip(models.items(), labels, unique_folders(labels), strict=True)
        for row in rows
        for seed in seeds
    ]
    asked = {cell: cell_fields(settings, cell, spec) for cell, spec in cells}
    _preflight(cells, asked, out)
    write_record(out / "run.json", run_settings(settings))
    grid = _Grid(out, on_cell or (lambda event: None), on_step, cancel or threading.Event(), engines, pool)
    numbered = list(enumerate(cells))
    if pool is None:
        records = [grid.run(cell, asked[cell], done, len(cells)) for done, (cell, _) in numbered]
    else:

        def run(item: tuple[int, tuple[Cell, ModelSpec]]) -> dict[str, Any]:
            done, (cell, _) = item
            return grid.run(cell, asked[cell], done, len(cells))

        records = fan_out(run, numbered, pool.size, grid.cancel)
    evaluate_records(records, out, evaluator, settings.recompute_metrics, on_cell)
    if on_cell is not None:
        on_cell(CellEvent("report", len(records), len(records)))
    return CompareResult(out, records, write_report(out, records, run_settings(settings)))


def _models(given: list[str]) -> dict[str, ModelSpec]:
    """The models to compare, as given -> their spec; a model given twice (also as another path to
    the same folder) is compared once."""
    models: dict[str, ModelSpec] = {}
    sources: set[str] = set()
    for model in given:
        spec = resolve_model(model)
        if _model_source(spec) not in sources:
            sources.add(_model_source(spec))
            models[model] = spec
    return models


def _model_source(spec: ModelSpec) -> str:
    """What tells models apart: a folder's resolved path, else the catalog id."""
    return str(spec.local_dir) if spec.local_dir else spec.id


def cell_fields(settings: CompareSettings, cell: Cell, spec: ModelSpec) -> dict[str, Any]:
    """The request fields of one cell (the image relative to the report folder).

    Models that do not read a prompt (SVD, SV3D) get none, rather than one they would ignore.
    """
    fields = {**settings.fields, "model": cell.model, "seed": cell.seed, "num_videos": 1, "formats": ["mp4"]}
    if cell.input.prompt and "prompt" in taken_fields(spec):
        fields["prompt"] = cell.input.prompt
    if cell.input.image:
        fields["image"] = cell.input.image
    return fields


def run_settings(settings: CompareSettings) -> dict[str, Any]:
    """The comparison's settings as JSON, for run.json and the report."""
    given = [name for name in ("prompts", "images") if getattr(settings, name) is not None]
    return {
        "models": settings.models,
        "seeds": settings.seeds,
        "inputs": " and ".join(given) or "the default set",
        "fields": settings.fields,
        "encoders": asdict(settings.encoders),
    }


def _rows(settings: CompareSettings, specs: list[ModelSpec], out: Path) -> list[GridInput]:
    """The grid's rows; with no inputs given, the default prompts, or the default stills when a
    model cannot start from text."""
    prompts, images = settings.prompts, settings.images
    if prompts is None and images is None:
        if all("t2v" in spec.tasks for spec in specs):
            prompts = default_prompts()
        elif any("t2v" in spec.tasks for spec in specs):
            text = ", ".join(spec.id for spec in specs if "t2v" in spec.tasks)
            raise UserError(
                f"models: {text} need a prompt and the others only take an image; give --images "
                "and --prompts (one prompt for every image, or one per image)"
            )
        else:
            images = default_stills()
    return grid_inputs(prompts, stage_images(images, out) if images else None)


def _preflight(cells: list[tuple[Cell, ModelSpec]], asked: dict[Cell, dict[str, Any]], out: Path) -> None:
    """Fail before any video is made: every cell's request must be valid and every model on disk."""
    for cell, _ in cells:
        try:
            resolve(parse_request(_request_fields(asked[cell], out, out)))
        except UserError as exc:
            raise UserError(f"{cell.model_id}, {cell.input.label!r}: {exc}") from None
    checked: set[str] = set()
    for cell, spec in cells:
        if cell.model not in checked:
            checked.add(cell.model)
            fields = asked[cell]
            locate_weights(spec, fields.get("revision"), fields.get("variant"))


def _request_fields(fields: dict[str, Any], out: Path, out_dir: Path) -> dict[str, Any]:
    request = {**fields, "out_dir": str(out_dir)}
    if "image" in fields:
        request["image"] = str(out / fields["image"])
    return request


def _fingerprint(fields: dict[str, Any], out: Path) -> dict[str, Any]:
    """What a finished cell must match to be kept: its request fields and its input image's bytes."""
    if "image" not in fields:
        return fields
    return {**fields, "image_sha256": hashlib.sha256((out / fields["image"]).read_bytes()).hexdigest()}


@dataclass
class _Grid:
    """Runs cells into ``out`` and reports each one."""

    out: Path
    report: CellCallback
    on_step: ProgressCallback | None
    cancel: CancelFlag
    engines: EngineCache
    #: runs the cells on its actors instead of here
    pool: WorkerPool | None = None
    #: the model whose engine may be loaded (only that one: see _measure_alone)
    loaded: str | None = None

    def run(self, cell: Cell, fields: dict[str, Any], done: int, total: int) -> dict[str, Any]:
        """Make one cell's video, or keep the finished one; return its record."""
        out = self.out
        event = partial(CellEvent, done=done, total=total, cell=cell)
        fingerprint = _fingerprint(fields, out)
        previous = read_record(cell.path(out, ".json"))
        if (
            previous is not None
            and previous.get("status") == "ok"
            and previous.get("asked") == fingerprint
            and (out / previous["files"]["video"]).is_file()
        ):
            self.report(event("skip"))
            return previous
        self.report(event("generate"))
        own_peak = self._measure_alone(cell)
        staging = cell.path(out, ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            request = parse_request(_request_fields(fields, out, staging))
            if self.pool is not None:
                result = self.pool.run_retrying(request, self.on_step, self.cancel)
            else:
                result = generate(request, self.on_step, self.cancel, self.engines)
            record = _finish(cell, result.videos[0], out)
            if not own_peak:
                record["peak_memory_mb"].pop("rss", None)
                record["peak_memory_note"] = NO_PEAK_RESET
        except Cancelled:
            raise
        except Exception as exc:  # a failed cell is recorded and reported; the rest of the grid still runs
            message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            record = {**cell.describe(), "status": "failed", "error": message}
            self.report(event("failed", note=message))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        record["asked"] = fingerprint
        write_record(cell.path(out, ".json"), record)
        return record

    def _measure_alone(self, cell: Cell) -> bool:
        """Make the peak memory recorded for ``cell``'s video its own: unload the engines of other
        models (their weights would count too) and restart the peak. False where the peak RAM cannot
        be restarted; the peak VRAM is restarted by ``generate`` on every call. On a pool each actor
        restarts its own peak before every run, and keeps at most its ``max_engines`` loaded.
        """
        if self.pool is not None:
            return True
        if cell.model != self.loaded:
            self.engines.clear()
            gc.collect()
            self.loaded = cell.model
        return reset_peak_rss()


def _finish(cell: Cell, video: VideoOutput, out: Path) -> dict[str, Any]:
    """Move generate's files to the cell's names and build its record."""
    moved = {}
    for kind, source in video.files.items():
        key, suffix = FILE_NAMES[kind]
        moved[key] = cell.path(out, suffix)
        os.replace(source, moved[key])
    sidecar = json.loads(moved["sidecar"].read_text(encoding="utf-8"))
    sidecar["outputs"] = {
        kind: cell.path(out, FILE_NAMES[kind][1]).name for kind in video.files if kind != "sidecar"
    }
    write_record(moved["sidecar"], sidecar)
    return {
        **cell.describe(),
        "seed": video.seed,
        "status": "ok",
        "error": None,
        "files": {kind: path.relative_to(out).as_posix() for kind, path in moved.items()},
        **run_facts(sidecar, video.timings),
    }
