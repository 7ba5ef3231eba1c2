"""Grid cells and their records: videos/<model>/<cell>.mp4 beside <cell>.json, the cell's record.

A record is written in one step (temporary file, then rename) after its video is in place, so
a record with status "ok" always means a finished cell: that is what resuming relies on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from videogen.compare.inputs import GridInput
from videogen.media import slugify

VIDEOS_DIR = "videos"


@dataclass(frozen=True)
class Cell:
    """One video of the grid: (model, row, seed)."""

    model: str  # as given: a catalog id or a folder
    model_id: str  # the model's label in the report: its id, or a tail of its folder (model_labels)
    folder: str  # the model's folder under videos/
    input: GridInput
    seed: int | None
    #: 2, 3, ... for further videos of the same model, row and seed (only from --from-dir)
    repeat: int = 1

    @property
    def name(self) -> str:
        name = self.input.key if self.seed is None else f"{self.input.key}_s{self.seed}"
        return name + (f"-{self.repeat}" if self.repeat > 1 else "")

    def path(self, out: Path, suffix: str) -> Path:
        """``out/videos/<folder>/<cell><suffix>``, e.g. suffix ``.mp4`` or ``.json``."""
        return out / VIDEOS_DIR / self.folder / f"{self.name}{suffix}"

    def describe(self) -> dict[str, Any]:
        """The fields every record starts with."""
        return {
            "cell": self.name,
            "model": self.model_id,
            "model_source": self.model,
            "folder": self.folder,
            "input": self.input.to_json(),
            "seed": self.seed,
        }


def record_path(out: Path, record: dict[str, Any]) -> Path:
    """Where a record lives: ``out/videos/<folder>/<cell>.json``."""
    return out / VIDEOS_DIR / record["folder"] / f"{record['cell']}.json"


def read_record(path: Path) -> dict[str, Any] | None:
    """A cell's record, or None when there is none (or it is unreadable, e.g. cut off mid-write)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a record (or any JSON object) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def model_labels(models: list[tuple[str, str]]) -> list[str]:
    """What the report calls each (id, source) pair: its id, unless models from other sources share
    it (two folders of the same name); those are called by the shortest tail of their source path
    that tells them apart (``a/tiny-unet3d`` and ``b/tiny-unet3d``).

    A catalog model's source is its id; a folder's is its resolved path.
    """
    sources: dict[str, set[str]] = {}
    for model_id, source in models:
        sources.setdefault(model_id, set()).add(source)
    tails: dict[str, str] = {}
    for model_id, group in sources.items():
        if len(group) == 1:
            tails[next(iter(group))] = model_id
            continue
        parts = {source: PurePath(source).parts for source in group}
        for depth in range(1, max(len(p) for p in parts.values()) + 1):
            labels = {source: "/".join(p[-depth:]).lstrip("/") for source, p in parts.items()}
            if len(set(labels.values())) == len(group):
                break
        else:  # e.g. the catalog id "svd" and the folder "/svd"
            labels = {source: source for source in group}
        tails.update(labels)
    return [tails[source] for _, source in models]


def unique_folders(names: list[str]) -> list[str]:
    """File-name-safe folder names, one per model, made unique with -2, -3, ... suffixes."""
    taken: set[str] = set()
    folders = []
    for name in names:
        base = slugify(name, max_len=60)
        folder, n = base, 1
        while folder in taken:
            n += 1
            folder = f"{base}-{n}"
        taken.add(folder)
        folders.append(folder)
    return folders
