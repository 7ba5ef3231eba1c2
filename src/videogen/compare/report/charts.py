"""The report's charts, drawn with matplotlib (no display needed): metric bars and a radar."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from videogen.compare.report.summary import ModelSummary
from videogen.metrics import METRICS

MIN_RADAR_AXES = 3
#: where the radar's metric names sit (the circle is at 1), and how far off an axis (as a cosine or
#: sine) a name may be and still be centred on it
LABEL_RADIUS, LABEL_SLACK = 1.07, 0.1


#: characters of a model's name under a bar (the name is whole in the table beside the charts)
BAR_LABEL_CHARS = 28


def _colours(count: int) -> list[tuple[float, ...]]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return [palette(index % 10) for index in range(count)]


def _arrow(name: str) -> str:
    better = METRICS[name].higher_is_better
    return "" if better is None else " (higher is better)" if better else " (lower is better)"


def bar_chart(summaries: list[ModelSummary], path: Path) -> bool:
    """One small bar plot per metric that has values: the mean per model with a one-std error bar.

    Returns False (and writes nothing) when no metric has a value.
    """
    from matplotlib.figure import Figure

    names = [name for name in METRICS if any(s.metrics.get(name) for s in summaries)]
    if not names:
        return False
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    width = max(3.2, 0.5 * len(summaries) + 1.5)
    height = 2.9 * rows
    figure = Figure(figsize=(width * columns, height))
    # Fixed margins in inches (room for titles and rotated model names): cheaper than a layout engine.
    figure.subplots_adjust(left=0.55 / (width * columns) + 0.02, right=0.98, top=1 - 0.3 / height,
                           bottom=0.75 / height, hspace=1.1 / 2.9 + 0.2, wspace=0.35)  # fmt: skip
    colours = _colours(len(summaries))
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, index + 1)
        present = [(i, s.metrics[name]) for i, s in enumerate(summaries) if s.metrics.get(name)]
        axes.bar(
            [i for i, _ in present],
            [stat.mean for _, stat in present],
            yerr=[stat.std for _, stat in present],
            color=[colours[i] for i, _ in present],
            capsize=3,
        )
        axes.set_title(METRICS[name].label + _arrow(name), fontsize=8)
        labels = [shortened(s.model, BAR_LABEL_CHARS) for s in summaries]
        axes.set_xticks(range(len(summaries)), labels, rotation=30, ha="right", fontsize=7)
        axes.tick_params(axis="y", labelsize=7)
        if METRICS[name].unit:
            axes.set_ylabel(METRICS[name].unit, fontsize=7)
    figure.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)  # the margins miss long names
    return True


def shortened(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis in the middle (the table has it whole)."""
    if len(text) <= limit:
        return text
    keep = limit - 1
    return f"{text[: (keep + 1) // 2]}…{text[len(text) - keep // 2 :]}"


def radar_chart(summaries: list[ModelSummary], path: Path) -> str | None:
    """A radar of normalised quality metrics, one outline per model; None when drawn, else why not.

    Each axis maps the metric's fixed range (``MetricInfo.scale``, VBench's where it has one) to
    0-1, so radars from different reports compare. Only metrics where higher is better and every
    model has a value take part.
    """
    from matplotlib.figure import Figure

    names = [
        name
        for name, info in METRICS.items()
        if info.scale and info.higher_is_better and all(s.metrics.get(name) for s in summaries)
    ]
    if len(names) < MIN_RADAR_AXES:
        return f"needs at least {MIN_RADAR_AXES} quality metrics measured for every model, has {len(names)}"
    angles = np.linspace(0, 2 * np.pi, len(names), endpoint=False)
    closed = np.append(angles, angles[0])
    figure = Figure(figsize=(7.0, 6.4), layout="constrained")
    axes = figure.add_subplot(projection="polar")
    for summary, colour in zip(summaries, _colours(len(summaries)), strict=True):
        values = [normalised(name, summary.metrics[name].mean) for name in names]
        axes.plot(closed, [*values, values[0]], color=colour, linewidth=1.6, label=summary.model)
        axes.fill(closed, [*values, values[0]], color=colour, alpha=0.12)
    axes.set_xticks(angles, [""] * len(names))  # the spokes; the labels are placed below
    for angle, name in zip(angles, names, strict=True):
        _radar_label(axes, float(angle), textwrap.fill(METRICS[name].label, 16))
    axes.set_ylim(0, 1)
    axes.set_yticks([0.25, 0.5, 0.75, 1.0], ["", "0.5", "", "1"], fontsize=6)
    figure.legend(loc="outside lower center", ncols=min(4, len(summaries)), fontsize=8)
    figure.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.15)  # the layout misses the names
    return None


def _radar_label(axes: Any, angle: float, text: str) -> None:
    """A metric's name just outside the circle, anchored on the side that faces it, so it grows away
    from the plot: centred labels at the left and right (matplotlib's tick labels) run into the
    circle on one side and out of the figure on the other."""
    cos, sin = math.cos(angle), math.sin(angle)
    horizontal = "left" if cos > LABEL_SLACK else "right" if cos < -LABEL_SLACK else "center"
    vertical = "bottom" if sin > LABEL_SLACK else "top" if sin < -LABEL_SLACK else "center"
    axes.text(angle, LABEL_RADIUS, text, ha=horizontal, va=vertical, fontsize=7, clip_on=False)


def normalised(name: str, value: float) -> float:
    """``value`` mapped from the metric's radar range to [0, 1], clipped."""
    low, high = METRICS[name].scale or (0.0, 1.0)
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))
