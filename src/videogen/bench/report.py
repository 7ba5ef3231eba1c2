"""The benchmark report as tables for people (``--json`` prints the same data for machines)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

ROWS = (
    ("load_s", "load (s)"),
    ("encode_s", "text/image encode (s)"),
    ("unet_step_s", "s per UNet call"),
    ("unet_s", "UNet total (s)"),
    ("decode_s", "decode (s)"),
    ("generate_s", "generate (s, no load)"),
    ("total_s", "total (s)"),
    ("peak_rss_mb", "peak RSS (MiB)"),
    ("peak_vram_mb", "peak VRAM (MiB)"),
    ("unet_evaluations", "UNet evaluations"),
    ("unet_tflops", "UNet TFLOP/s"),
    ("decode_tflops", "decode TFLOP/s"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _range(spread: list[float] | None) -> str:
    """'min-max' of a [min, median, max] spread; '-' where it was not measured."""
    return "-" if spread is None else f"{_cell(spread[0])}-{_cell(spread[2])}"


def print_report(report: dict[str, Any], console: Console) -> None:
    """Print the settings, the per-side figures with their ratios, and the ablations."""
    s = report["settings"]
    shape = f"{s['num_frames']} frames {s['width']}x{s['height']}, {s['steps']} steps"
    where = f"{report['device']} {report['dtype']}"
    console.print(
        f"[bold]{report['model']}[/bold] ({report['weights']} weights) on {where}: {shape}", highlight=False
    )
    flops = report["flops"]
    if flops.get("unet_evaluation_tflop"):
        console.print(
            f"FLOPs: {flops['unet_evaluation_tflop']:.3g} TFLOP per UNet evaluation, "
            f"{flops['decode_frame_tflop'] or 0:.3g} per decoded frame",
            highlight=False,
        )
    summary = report["summary"]
    names = [name for name in ("videogen", "diffusers") if name in summary]
    rounds = sum(run["name"] == "videogen" for run in report["runs"])
    ratio_columns = ["videogen / diffusers", "per round (min-max)"] if report["ratios"] else []
    table = Table("", *names, *ratio_columns)
    for key, label in ROWS:
        cells = [_cell(summary[name].get(key)) for name in names]
        if report["ratios"]:
            cells += [_cell(report["ratios"].get(key)), _range(report["ratio_spread"].get(key))]
        table.add_row(label, *cells)
    console.print(table)
    if rounds > 1:
        console.print(f"figures are medians of {rounds} rounds; ratios are of those medians", highlight=False)
    if report["max_abs_difference"] is not None:
        console.print(f"max |videogen - diffusers| over the frames: {report['max_abs_difference']:.2e}")
    if "ablations" in report:
        ablations = Table(
            "change (vs videogen)", "total", "s per UNet call", "decode", "peak RSS", "max diff"
        )
        for name, ratios in report["ablations"].items():
            ablations.add_row(
                name,
                *(_cell(ratios[key]) for key in ("total_s", "unet_step_s", "decode_s", "peak_rss_mb")),
                f"{ratios['max_abs_difference']:.1e}",
            )
        console.print(ablations)
