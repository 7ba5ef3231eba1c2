"""results.csv and results.json: one row per video."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from videogen import __version__
from videogen.compare.report.summary import ModelSummary
from videogen.metrics import METRICS

COLUMNS = (
    "model", "cell", "input_kind", "input_index", "prompt", "image", "seed", "status", "error", "video",
    "steps", "video_s", "s_per_step", "load_s", "peak_rss_mb", "peak_vram_mb", *METRICS, "skipped",
)  # fmt: skip


def csv_row(record: dict[str, Any]) -> dict[str, Any]:
    """A record flattened to the CSV columns; a skipped metric's cell is empty, its reason in ``skipped``."""
    timings, memory, metrics = (
        record.get("timings", {}),
        record.get("peak_memory_mb", {}),
        record.get("metrics", {}),
    )
    row = {
        "model": record["model"],
        "cell": record["cell"],
        "input_kind": record["input"]["kind"],
        "input_index": record["input"]["index"],
        "prompt": record.get("prompt") or record["input"]["prompt"],
        "image": record["input"]["image"],
        "seed": record.get("seed"),
        "status": record.get("status"),
        "error": record.get("error"),
        "video": record.get("files", {}).get("video"),
        "steps": record.get("steps"),
        "video_s": timings.get("video_s"),
        "s_per_step": timings.get("s_per_step"),
        "load_s": timings.get("load_s"),
        "peak_rss_mb": memory.get("rss"),
        "peak_vram_mb": memory.get("vram"),
    }
    row.update({name: metrics.get(name, {}).get("value") for name in METRICS})
    row["skipped"] = "; ".join(f"{name}: {m['skipped']}" for name, m in metrics.items() if m.get("skipped"))
    return row


def write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for record in records:
            writer.writerow({key: "" if value is None else value for key, value in csv_row(record).items()})


def write_json(
    path: Path, records: list[dict[str, Any]], settings: dict[str, Any], summaries: list[ModelSummary]
) -> None:
    """The settings, the metric definitions, the per-model summary and every video's full record."""
    data = {
        "videogen_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "metric_definitions": {
            name: {
                "label": info.label,
                "description": info.description,
                "unit": info.unit,
                "higher_is_better": info.higher_is_better,
                "radar_scale": info.scale,
            }
            for name, info in METRICS.items()
        },  # fmt: skip
        "models": [summary.to_json() for summary in summaries],
        "videos": [{key: value for key, value in record.items() if key != "asked"} for record in records],
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
