"""``videogen compare --from-dir``: evaluate videos made elsewhere, read together with their sidecars.

A video that has a videogen sidecar gets its model, prompt, seed, input image, timings and memory
from it. Any other mp4/webm is still evaluated, under its folder's name as the model.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from videogen.compare.cells import Cell, model_labels, read_record, unique_folders, write_record
from videogen.compare.evaluation import evaluate_records
from videogen.compare.events import CellCallback, CellEvent
from videogen.compare.facts import run_facts
from videogen.compare.inputs import INPUTS_DIR, GridInput
from videogen.compare.report import write_report
from videogen.compare.runner import CompareResult
from videogen.errors import UserError
from videogen.metrics import EncoderSources, Evaluator

VIDEO_SUFFIXES = (".mp4", ".webm")


@dataclass(frozen=True)
class FoundVideo:
    """A video file, its sidecar (None for videos from other tools) and the input image saved with it."""

    video: Path
    sidecar: dict[str, Any] | None = None
    input_image: Path | None = None

    @property
    def model(self) -> str:
        model = (self.sidecar or {}).get("model") or {}
        return model.get("id") or self.video.parent.name

    @property
    def source(self) -> str:
        """What tells models apart: a catalog model's id, a local model folder's path, else the
        folder the video is in."""
        model = (self.sidecar or {}).get("model") or {}
        if not model.get("id"):
            return str(self.video.parent.resolve())
        return model["id"] if model.get("repo_id") else str(model.get("source") or model["id"])

    @property
    def row(self) -> tuple[str | None, str | None]:
        """(prompt, input image name): videos with the same pair share a row of the grid."""
        request = (self.sidecar or {}).get("request") or {}
        image = request.get("image")
        return request.get("prompt"), Path(image).name if image else None


def find_videos(folder: Path, exclude: Path | None = None) -> list[FoundVideo]:
    """Every mp4/webm under ``folder`` (not under ``exclude``), paired with its sidecar when it has one."""
    if not folder.is_dir():
        raise UserError(f"from-dir: {str(folder)!r} is not a folder")

    def wanted(path: Path) -> bool:
        return exclude is None or not path.resolve().is_relative_to(exclude.resolve())

    found: dict[Path, FoundVideo] = {}
    claimed: set[Path] = set()
    for path in sorted(p for p in folder.rglob("*.json") if wanted(p)):
        sidecar = _sidecar(path)
        if sidecar is None:
            continue
        outputs = sidecar["outputs"]
        videos = [path.parent / outputs[kind] for kind in ("mp4", "webm") if kind in outputs]
        videos = [video for video in videos if video.is_file()]
        if not videos:
            continue
        claimed.update(video.resolve() for video in videos)
        image = path.parent / outputs["input"] if "input" in outputs else None
        found[videos[0].resolve()] = FoundVideo(
            videos[0], sidecar, image if image and image.is_file() else None
        )
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and wanted(p)):
        if path.is_file() and path.resolve() not in claimed:
            found[path.resolve()] = FoundVideo(path)
    if not found:
        raise UserError(f"from-dir: no videos ({', '.join(VIDEO_SUFFIXES)}) under {str(folder)!r}")
    return sorted(found.values(), key=lambda item: str(item.video))


def run_from_dir(
    folder: Path,
    out: Path,
    encoders: EncoderSources | None = None,
    recompute_metrics: bool = False,
    on_cell: CellCallback | None = None,
) -> CompareResult:
    """Evaluate every video under ``folder`` and write the report into ``out``."""
    encoders = encoders or EncoderSources()
    evaluator = Evaluator(encoders)
    videos = find_videos(folder, exclude=out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for done, (cell, video) in enumerate(_cells(videos, out)):
        if on_cell is not None:
            on_cell(CellEvent("import", done, len(videos), cell))
        records.append(_import(cell, video, out))
    evaluate_records(records, out, evaluator, recompute_metrics, on_cell)
    if on_cell is not None:
        on_cell(CellEvent("report", len(records), len(records)))
    settings = {"from_dir": str(folder.resolve()), "videos": len(records), "encoders": asdict(encoders)}
    write_record(out / "run.json", settings)
    return CompareResult(out, records, write_report(out, records, settings))


def _sidecar(path: Path) -> dict[str, Any] | None:
    """The JSON at ``path`` if it is a videogen sidecar (it has the request and the outputs)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if (
        isinstance(data, dict)
        and isinstance(data.get("request"), dict)
        and isinstance(data.get("outputs"), dict)
    ):
        return data
    return None


def _cells(videos: list[FoundVideo], out: Path) -> list[tuple[Cell, FoundVideo]]:
    """One cell per video: rows by (prompt, input image), models by id and source, names unique per
    model."""
    rows: dict[tuple[str | None, str | None], GridInput] = {}
    for video in videos:
        if video.row not in rows:
            rows[video.row] = _row(len(rows), video, out)
    models = list(dict.fromkeys((video.model, video.source) for video in videos))
    labels = model_labels(models)
    named = dict(zip(models, zip(labels, unique_folders(labels), strict=True), strict=True))
    names: set[tuple[str, str]] = set()
    cells = []
    for video in videos:
        seed = (video.sidecar or {}).get("seed")
        label, folder = named[video.model, video.source]
        cell = Cell(video.source, label, folder, rows[video.row], seed)
        while (cell.folder, cell.name) in names:  # the same model, row and seed twice
            cell = Cell(cell.model, cell.model_id, cell.folder, cell.input, seed, cell.repeat + 1)
        names.add((cell.folder, cell.name))
        cells.append((cell, video))
    return cells


def _row(index: int, video: FoundVideo, out: Path) -> GridInput:
    prompt, image_name = video.row
    if video.input_image is None:
        return GridInput(index, prompt=prompt)
    target = out / INPUTS_DIR / f"{index:03d}-{image_name or video.input_image.name}"
    _place(video.input_image, target)
    return GridInput(index, prompt=prompt, image=target.relative_to(out).as_posix())


def _import(cell: Cell, video: FoundVideo, out: Path) -> dict[str, Any]:
    """The cell's record, copying the video in unless the same file was imported before."""
    stat = video.video.stat()
    source = {"path": str(video.video.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    previous = read_record(cell.path(out, ".json"))
    if (
        previous is not None
        and previous.get("source") == source
        and (out / previous["files"]["video"]).is_file()
    ):
        return previous
    files = {"video": cell.path(out, video.video.suffix.lower())}
    if video.input_image is not None:
        files["input"] = cell.path(out, "_input.png")
    _place(video.video, files["video"])
    if "input" in files:
        _place(video.input_image, files["input"])
    facts = run_facts(video.sidecar) if video.sidecar else {"prompt": None}
    record = {
        **cell.describe(),
        "status": "ok",
        "error": None,
        "source": source,
        "files": {key: path.relative_to(out).as_posix() for key, path in files.items()},
        **facts,
    }
    write_record(cell.path(out, ".json"), record)
    return record


def _place(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (a copy across file systems), replacing what was there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
