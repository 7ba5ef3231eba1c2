"""index.html: the side-by-side grid, the metric tables, the charts and the exact settings.

The page is static and self-contained: videos, input images and charts are files in the report
folder referenced by relative paths; the small script that starts the players together is inline.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from videogen import __version__
from videogen.compare.report.summary import ModelSummary, Stat
from videogen.metrics import METRICS

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 1.5rem 3rem; color: #1d1f23; }
header { position: sticky; top: 0; z-index: 1; background: #fff; padding: .6rem 0; }
header { border-bottom: 1px solid #ddd; }
h1 { font-size: 1.3rem; margin: .2rem 0; } h2 { font-size: 1.1rem; margin-top: 2rem; }
button { font: inherit; padding: .25rem .8rem; margin-right: .4rem; }
table { border-collapse: collapse; margin: .6rem 0; }
th, td { border: 1px solid #ddd; padding: .35rem .5rem; vertical-align: top; text-align: left; }
thead th { background: #f4f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: 700; background: #eef8ee; }
th.input { max-width: 16rem; font-weight: 500; }
th.input img { display: block; max-width: 12rem; margin-bottom: .3rem; }
.clips { display: flex; gap: .4rem; } .scroll { overflow-x: auto; }
figure { margin: 0; } video { display: block; width: 224px; background: #000; }
figcaption { font-size: 12px; color: #555; }
.failed .error { width: 224px; color: #a00; font-size: 12px; white-space: pre-wrap; }
.skip { color: #888; } .note { color: #555; font-size: 13px; } pre { background: #f6f6f6; padding: .6rem; }
img.chart { max-width: 100%; border: 1px solid #eee; }
"""

SCRIPT = """
(() => {
  const videos = Array.from(document.querySelectorAll("video"));
  const toggle = document.getElementById("toggle");
  const ready = (video) => video.readyState >= 3 ? Promise.resolve() : new Promise((resolve) => {
    video.addEventListener("canplay", resolve, { once: true });
    video.addEventListener("error", resolve, { once: true });
  });
  const play = (video) => video.play().catch((e) => console.warn("did not start", video.currentSrc, e.name));
  const playable = () => videos.filter((video) => !video.error);
  // play() right after the seek: the players leave the paused state at once and start from 0 together.
  function restartAll() {
    for (const video of videos) { video.currentTime = 0; play(video); }
    toggle.textContent = "Pause all";
  }
  // The players do not loop on their own (clips of different lengths would drift apart): one that
  // ends holds its last frame until the longest has ended too, then all start again together.
  for (const video of videos) {
    video.addEventListener("ended", () => {
      if (toggle.textContent === "Pause all" && playable().every((v) => v.ended)) restartAll();
    });
  }
  document.getElementById("restart").addEventListener("click", restartAll);
  toggle.addEventListener("click", () => {
    const pause = toggle.textContent === "Pause all";
    // Playing an ended clip would restart it alone: those wait for the others, or all restart.
    const running = playable().filter((video) => !video.ended);
    if (!pause && running.length === 0) return restartAll();
    running.forEach((video) => pause ? video.pause() : play(video));
    toggle.textContent = pause ? "Play all" : "Pause all";
  });
  Promise.all(videos.map(ready)).then(restartAll);
})();
"""

OWN_MEMORY = (
    "Peak RAM and VRAM are each model's own: before each video the other models are unloaded and "
    "the peaks restarted, and a model's figure is the highest of its videos (RAM includes the Python "
    "process and its libraries)."
)
IMPORTED_MEMORY = (
    "Peak RAM and VRAM are as each video's sidecar recorded them: the peak of the process that made "
    "it, which includes whatever that process ran before."
)

MIME = {".mp4": "video/mp4", ".webm": "video/webm"}


def render_index(
    records: list[dict[str, Any]],
    summaries: list[ModelSummary],
    settings: dict[str, Any],
    bars: bool,
    radar_missing: str | None,
) -> str:
    """The whole page as a string."""
    failed = sum(1 for r in records if r.get("status") != "ok")
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = {(r["input"]["kind"], r["input"]["index"]): r["input"] for r in records}
    lead = (
        f"{_count(len(summaries), 'model')}, {_count(len(rows), 'input')}, {_count(len(records), 'video')}"
        + (f", <strong>{failed} failed</strong>" if failed else "")
        + f" &middot; made {created} by videogen {escape(__version__)} &middot; "
        '<a href="results.csv">results.csv</a> &middot; <a href="results.json">results.json</a>'
    )
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>videogen comparison: {escape(', '.join(s.model for s in summaries))}</title>",
            f"<style>{STYLE}</style></head><body>",
            "<header><h1>videogen comparison</h1>",
            f'<div class="note">{lead}</div>',
            '<div><button id="restart">Restart all</button><button id="toggle">Pause all</button></div>',
            "</header>",
            "<h2>Videos</h2>",
            _grid(records, summaries, rows),
            "<h2>Metrics</h2>",
            _metrics_table(summaries),
            _charts(bars, radar_missing),
            "<h2>Speed and memory</h2>",
            _speed_table(summaries, "from_dir" in settings),
            "<h2>Settings</h2>",
            _settings(settings, summaries),
            f"<script>{SCRIPT}</script>",
            "</body></html>",
        ]
    )


def _url(path: str) -> str:
    """A relative path as an attribute-safe URL (file names may hold spaces, # or ?)."""
    return escape(quote(path))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _grid(records: list[dict[str, Any]], summaries: list[ModelSummary], rows: dict) -> str:
    """Rows = prompts or images, columns = models; each cell holds that pair's videos, by seed."""
    header = "".join(f"<th>{escape(s.model)}</th>" for s in summaries)
    lines = [f'<div class="scroll"><table><thead><tr><th>input</th>{header}</tr></thead><tbody>']
    for key in sorted(rows, key=lambda k: (k[1], k[0])):
        row = rows[key]
        label = escape(row["label"])
        image = f'<img src="{_url(row["image"])}" alt="">' if row["image"] else ""
        cells = []
        for summary in summaries:
            found = [
                r
                for r in records
                if r["model"] == summary.model and (r["input"]["kind"], r["input"]["index"]) == key
            ]
            clips = "".join(_clip(r) for r in sorted(found, key=lambda r: str(r.get("seed"))))
            cells.append(f'<td><div class="clips">{clips}</div></td>')
        lines.append(f'<tr><th class="input">{image}{label}</th>{"".join(cells)}</tr>')
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def _clip(record: dict[str, Any]) -> str:
    caption = f"seed {escape(str(record.get('seed')))}"
    if record.get("status") != "ok":
        error = escape(str(record.get("error") or "failed"))
        return (
            f'<figure class="failed"><div class="error">failed: {error}</div>'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    seconds = record.get("timings", {}).get("video_s")
    if seconds is not None:
        caption += f" &middot; {seconds:.1f} s"
    video = record["files"]["video"]
    kind = MIME.get(Path(video).suffix.lower(), "")
    return (
        '<figure><video muted playsinline preload="auto">'
        f'<source src="{_url(video)}" type="{kind}"></video>'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _metrics_table(summaries: list[ModelSummary]) -> str:
    """Mean ± std per model (n and range on hover); the best means per row in bold (``_best``); skips
    as footnotes."""
    notes: list[str] = []
    header = "".join(f"<th>{escape(s.model)}</th>" for s in summaries)
    lines = [f"<table><thead><tr><th>metric</th>{header}</tr></thead><tbody>"]
    for name, info in METRICS.items():
        stats = [s.metrics.get(name) for s in summaries]
        best = _best(name, stats)
        ties = len(best) > 1
        cells = []
        for summary, stat in zip(summaries, stats, strict=True):
            if stat is None:
                marks = []
                for reason in summary.skipped.get(name, []):
                    if reason not in notes:
                        notes.append(reason)
                    marks.append(str(notes.index(reason) + 1))
                cells.append(f'<td class="skip">skipped <sup>{",".join(marks)}</sup></td>')
                continue
            title = f"n={stat.n}, min {stat.min:.4g}, max {stat.max:.4g}"
            if id(stat) in best:
                css, title = "num best", title + (", tied best" if ties else ", best")
            else:
                css = "num"
            cells.append(f'<td class="{css}" title="{title}">{_mean(stat)} &plusmn; {stat.std:.2g}</td>')
        unit = f" ({escape(info.unit)})" if info.unit else ""
        label = f'<th title="{escape(info.description)}">{escape(info.label)}{unit}</th>'
        lines.append(f"<tr>{label}{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    lines.append(
        '<p class="note">Bold: the best mean of a row (by the metric\'s direction). Means are compared '
        "as shown (4 significant digits): where several models share the best, all of them are bold; "
        "where every model shares it, none is.</p>"
    )
    if notes:
        items = "".join(f"<li>{escape(note)}</li>" for note in notes)
        lines.append(f'<div class="note">Skipped metrics:<ol>{items}</ol></div>')
    definitions = "".join(
        f"<dt>{escape(i.label)}</dt><dd>{escape(i.description)}</dd>" for i in METRICS.values()
    )
    lines.append(f"<details><summary>How each metric is computed</summary><dl>{definitions}</dl></details>")
    return "\n".join(lines)


def _mean(stat: Stat) -> str:
    return f"{stat.mean:.4g}"


def _best(name: str, stats: list[Stat | None]) -> set[int]:
    """The ids of the stats holding the best mean as shown; none when all of them hold it (a tie
    between every model is no win) or the metric has no better direction."""
    better = METRICS[name].higher_is_better
    present = [stat for stat in stats if stat is not None]
    if better is None or len(present) < 2:
        return set()
    top = max(present, key=lambda s: s.mean) if better else min(present, key=lambda s: s.mean)
    best = {id(stat) for stat in present if _mean(stat) == _mean(top)}
    return set() if len(best) == len(present) else best


def _charts(bars: bool, radar_missing: str | None) -> str:
    parts = []
    if bars:
        parts.append('<p><img class="chart" src="charts/metrics.png" alt="metric means per model"></p>')
    if radar_missing is None:
        parts.append(
            '<p><img class="chart" src="charts/radar.png" alt="normalised metrics per model"></p>'
            '<p class="note">Radar: each metric mapped from a fixed range to 0-1 (VBench\'s normalisation '
            "ranges where the formula is VBench's), so radars of different reports compare.</p>"
        )
    else:
        parts.append(f'<p class="note">No radar chart: it {escape(radar_missing)}.</p>')
    return "\n".join(parts)


def _speed_table(summaries: list[ModelSummary], imported: bool) -> str:
    header = (
        "<tr><th>model</th><th>videos</th><th>failed</th><th>time per video (s)</th><th>s per step</th>"
        "<th>model load (s)</th><th>peak RAM (MB)</th><th>peak VRAM (MB)</th><th>device</th>"
        "<th>dtype</th></tr>"
    )
    lines = [f"<table><thead>{header}</thead><tbody>"]
    for s in summaries:
        cells = [
            f"<td>{escape(s.model)}</td>",
            f'<td class="num">{s.videos}</td>',
            f'<td class="num">{s.failed}</td>',
            _stat_cell(s.speed.get("video_s"), "{:.2f} &plusmn; {:.2f}"),
            _stat_cell(s.speed.get("s_per_step"), "{:.3f}"),
            _stat_cell(s.speed.get("load_s"), "{:.1f}", use_max=True),
            _memory_cell(s, "rss"),
            _memory_cell(s, "vram"),
            f"<td>{escape(s.device or '-')}</td>",
            f"<td>{escape(s.dtype or '-')}</td>",
        ]
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    memory = IMPORTED_MEMORY if imported else OWN_MEMORY
    lines.append(
        '<p class="note">Time per video is encode + denoise + decode, without loading the model (shown '
        f"apart) or writing files. {memory}</p>"
    )
    notes = dict.fromkeys(note for s in summaries for note in s.memory_notes)
    lines.extend(f'<p class="note">Peak RAM {escape(note)}.</p>' for note in notes)
    return "\n".join(lines)


def _memory_cell(summary: ModelSummary, kind: str) -> str:
    value = summary.peak_memory_mb.get(kind)
    if value is None and kind == "rss" and summary.memory_notes:
        return '<td class="skip">not measured</td>'
    return _number_cell(value)


def _stat_cell(stat: Stat | None, pattern: str, use_max: bool = False) -> str:
    if stat is None:
        return '<td class="skip">-</td>'
    text = pattern.format(stat.max) if use_max else pattern.format(stat.mean, stat.std)
    return f'<td class="num">{text}</td>'


def _number_cell(value: float | None) -> str:
    return '<td class="skip">-</td>' if value is None else f'<td class="num">{value:,.0f}</td>'


def _settings(settings: dict[str, Any], summaries: list[ModelSummary]) -> str:
    parts = [f"<pre>{escape(json.dumps(settings, indent=2, ensure_ascii=False))}</pre>"]
    for s in summaries:
        if s.settings:
            facts = {"request": s.settings, "libraries": s.libraries}
            text = escape(json.dumps(facts, indent=2, ensure_ascii=False))
            summary = f"{escape(s.model)}: settings and library versions"
            parts.append(f"<details><summary>{summary}</summary><pre>{text}</pre></details>")
    return "\n".join(parts)
