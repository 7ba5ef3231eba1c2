"""The comparison report: one self-contained folder with index.html, results.csv, results.json, charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videogen.compare.report.charts import bar_chart, radar_chart
from videogen.compare.report.html import render_index
from videogen.compare.report.summary import ModelSummary, Stat, summarise
from videogen.compare.report.tables import write_csv, write_json

__all__ = ["ModelSummary", "Stat", "summarise", "write_report"]


def write_report(out: Path, records: list[dict[str, Any]], settings: dict[str, Any]) -> Path:
    """Write the report files into ``out`` (which holds the videos); return index.html's path."""
    summaries = summarise(records)
    charts = out / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    bars = bar_chart(summaries, charts / "metrics.png")
    radar_missing = radar_chart(summaries, charts / "radar.png")
    write_csv(out / "results.csv", records)
    write_json(out / "results.json", records, settings, summaries)
    index = out / "index.html"
    index.write_text(render_index(records, summaries, settings, bars, radar_missing), encoding="utf-8")
    return index
