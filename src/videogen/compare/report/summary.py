"""Per-model aggregates of the records: each metric's mean and spread, speed and memory."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from videogen.metrics import METRICS

#: Request fields that differ from cell to cell, left out of a model's shared settings.
PER_CELL = ("prompt", "image", "seed", "out_dir", "model")


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (0 for one value), range and count of some values."""

    mean: float
    std: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat | None:
        if not values:
            return None
        array = np.asarray(values, dtype=np.float64)
        std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
        return cls(float(array.mean()), std, float(array.min()), float(array.max()), len(array))

    def to_json(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max, "n": self.n}


@dataclass
class ModelSummary:
    """One model's column of the report."""

    model: str
    videos: int = 0
    failed: int = 0
    metrics: dict[str, Stat | None] = field(default_factory=dict)
    #: for metrics with no value at all: the distinct reasons they were skipped
    skipped: dict[str, list[str]] = field(default_factory=dict)
    speed: dict[str, Stat | None] = field(default_factory=dict)
    peak_memory_mb: dict[str, float] = field(default_factory=dict)
    #: why a peak is missing, e.g. the RAM peak could not be restarted for each video
    memory_notes: list[str] = field(default_factory=list)
    #: where the videos were made ("cuda:0 (NVIDIA H200)", "cpu") and in which dtype
    device: str = ""
    dtype: str = ""
    #: the resolved request of the model's first video, less what varies per cell
    settings: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "videos": self.videos,
            "failed": self.failed,
            "metrics": {name: stat.to_json() if stat else None for name, stat in self.metrics.items()},
            "skipped": self.skipped,
            "speed": {name: stat.to_json() if stat else None for name, stat in self.speed.items()},
            "peak_memory_mb": self.peak_memory_mb,
            "memory_notes": self.memory_notes,
            "device": self.device,
            "dtype": self.dtype,
            "settings": self.settings,
            "libraries": self.libraries,
        }


def summarise(records: list[dict[str, Any]]) -> list[ModelSummary]:
    """One summary per model, in the order the models first appear."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_model.setdefault(record["model"], []).append(record)
    return [_summary(model, rows) for model, rows in by_model.items()]


def _summary(model: str, records: list[dict[str, Any]]) -> ModelSummary:
    ok = [r for r in records if r.get("status") == "ok"]
    summary = ModelSummary(model, videos=len(ok), failed=len(records) - len(ok))
    for name in METRICS:
        results = [r["metrics"][name] for r in ok if name in r.get("metrics", {})]
        summary.metrics[name] = Stat.of([m["value"] for m in results if m["value"] is not None])
        if summary.metrics[name] is None:
            summary.skipped[name] = sorted({m["skipped"] for m in results if m["skipped"]}) or [
                "not evaluated"
            ]
    for name in ("video_s", "s_per_step", "load_s"):
        summary.speed[name] = Stat.of([r["timings"][name] for r in ok if name in r.get("timings", {})])
    for kind in ("rss", "vram"):
        peaks = [r["peak_memory_mb"][kind] for r in ok if kind in r.get("peak_memory_mb", {})]
        if peaks:
            summary.peak_memory_mb[kind] = max(peaks)
    summary.memory_notes = sorted({r["peak_memory_note"] for r in ok if r.get("peak_memory_note")})
    summary.device = _distinct(_device(r) for r in ok)
    summary.dtype = _distinct(r.get("dtype") for r in ok)
    if ok:
        first = ok[0]
        request = first.get("request") or {}
        summary.settings = {key: value for key, value in request.items() if key not in PER_CELL}
        summary.libraries = first.get("libraries") or {}
    return summary


def _device(record: dict[str, Any]) -> str | None:
    """``cuda:0 (NVIDIA H200)``, ``cpu``: the device a video was made on, with its name where known."""
    device, name = record.get("device"), record.get("device_name")
    if not device:
        return None
    return f"{device} ({name})" if name else str(device)


def _distinct(values: Iterable[str | None]) -> str:
    """The distinct values given, in order, joined by commas (videos from several runs may differ)."""
    return ", ".join(dict.fromkeys(value for value in values if value))
