"""videogen compare measures each model on its own: peak memory, device, ties, radar labels, names."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from videogen import engines, memory
from videogen.compare import CellEvent, CompareSettings, run_compare, run_from_dir, write_report
from videogen.compare.report import ModelSummary, Stat
from videogen.compare.report.charts import bar_chart, radar_chart, shortened
from videogen.engines import EngineCache
from videogen.metrics import METRICS, EncoderSources
from videogen.testing import build_tiny_model

SMALL = {"num_frames": 4, "height": 64, "width": 64, "steps": 2, "device": "cpu"}
NO_ENCODERS = EncoderSources(learned=False)
#: what the first model's engine holds while loaded, and what it needs on top while it makes a video
HELD_MB, WORKING_MB = 300, 300


@pytest.fixture(scope="module")
def same_name(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two different tiny models in folders of the same name: a/tiny-unet3d and b/tiny-unet3d."""
    root = tmp_path_factory.mktemp("same-name")
    return [
        build_tiny_model("unet3d", root / side / "tiny-unet3d", seed=seed)
        for side, seed in (("a", 1), ("b", 2))
    ]


def _touched(megabytes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Memory that is really in use: every byte written."""
    return torch.ones(megabytes * 2**20, dtype=torch.uint8, device=device)


class _Hungry:
    """An engine that holds HELD_MB while loaded and needs WORKING_MB more while it generates."""

    def __init__(self, engine: Any, device: torch.device) -> None:
        self.engine, self.device, self.held = engine, device, _touched(HELD_MB, device)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        working = _touched(WORKING_MB, self.device)
        del working
        return self.engine.generate(*args, **kwargs)


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model("unet3d", tmp_path_factory.mktemp("models") / "tiny-other", seed=3)


def _make_hungry(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine of the model in ``folder`` uses HELD_MB + WORKING_MB more than it would."""
    load = engines.load_engine

    def loader(family: str, loaded: Path, device: torch.device, *args: Any, **kwargs: Any) -> Any:
        engine = load(family, loaded, device, *args, **kwargs)
        return _Hungry(engine, device) if Path(loaded).resolve() == folder.resolve() else engine

    monkeypatch.setattr(engines, "load_engine", loader)


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _speed_rows(html: str) -> dict[str, list[str]]:
    """The speed-and-memory table: model -> its other cells' texts."""
    table = html.split("<h2>Speed and memory</h2>")[1].split("</table>")[0]
    rows = {}
    for row in re.findall(r"<tr>(<td.*?)</tr>", table):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.parametrize(
    ("device", "peak"),
    [
        ("cpu", "rss"),
        pytest.param(
            "cuda", "vram", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
        ),
    ],
)
def test_each_models_peak_memory_is_its_own(
    device: str,
    peak: str,
    tiny_unet3d: Path,
    other_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _make_hungry(tiny_unet3d, monkeypatch)
    out = tmp_path / "report"
    fields = {**SMALL, "device": device}
    settings = CompareSettings(
        [str(tiny_unet3d), str(other_model)], [0], ["a red ball"], fields=fields, encoders=NO_ENCODERS
    )
    assert not run_compare(settings, out, engines=EngineCache()).failures
    rows = {row["model"]: row for row in _rows(out)}
    # The first model needed 600 MB more; the second's peak is its own, not the process's so far.
    first, second = (float(rows[label][f"peak_{peak}_mb"]) for label in ("tiny-unet3d", "tiny-other"))
    assert first - second > (HELD_MB + WORKING_MB) * 0.8, (first, second)
    data = json.loads((out / "results.json").read_text())
    assert [m["device"].split(":")[0].split(" ")[0] for m in data["models"]] == [device] * 2
    speed = _speed_rows((out / "index.html").read_text())
    column = 5 if peak == "rss" else 6  # "1,234" MB
    shown = [float(speed[label][column].replace(",", "")) for label in ("tiny-unet3d", "tiny-other")]
    assert shown[0] - shown[1] > (HELD_MB + WORKING_MB) * 0.8
    # The device column shows the device ("cpu", "cuda:0 (NVIDIA ...)"), the dtype its own column.
    assert speed["tiny-other"][-2:] == [data["models"][1]["device"], data["models"][1]["dtype"]]


def test_same_name_models_stay_two_models(same_name: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    models = [str(path) for path in same_name]
    settings = CompareSettings(models, [0], ["a red ball"], fields=SMALL, encoders=NO_ENCODERS)
    assert not run_compare(settings, out).failures
    rows = {row["model"]: row for row in _rows(out)}
    assert sorted(rows) == ["a/tiny-unet3d", "b/tiny-unet3d"]
    # Two models, two different videos: not one model's results filed under the other's name.
    videos = [(out / rows[label]["video"]).read_bytes() for label in ("a/tiny-unet3d", "b/tiny-unet3d")]
    assert videos[0] != videos[1]
    data = json.loads((out / "results.json").read_text())
    assert [(m["model"], m["videos"]) for m in data["models"]] == [("a/tiny-unet3d", 1), ("b/tiny-unet3d", 1)]
    assert [v["model_source"] for v in data["videos"]] == models
    html = (out / "index.html").read_text()
    assert sorted(_speed_rows(html)) == ["a/tiny-unet3d", "b/tiny-unet3d"]
    assert html.count("<th>a/tiny-unet3d</th><th>b/tiny-unet3d</th>") == 2  # the grid and the metrics
    # Resuming, in either order, keeps each model's finished video: nothing is made again.
    for order in (models, models[::-1]):
        events: list[CellEvent] = []
        again = CompareSettings(order, [0], ["a red ball"], fields=SMALL, encoders=NO_ENCODERS)
        run_compare(again, out, on_cell=events.append)
        assert sorted(f"{e.stage} {e.cell.model_id}" for e in events if e.cell) == [
            "skip a/tiny-unet3d",
            "skip b/tiny-unet3d",
        ]
    # Evaluating those videos elsewhere (--from-dir) keeps them apart too, by their sidecars' sources.
    imported = run_from_dir(out / "videos", tmp_path / "imported", NO_ENCODERS)
    assert sorted((r["model"], r["model_source"]) for r in imported.records) == [
        ("a/tiny-unet3d", models[0]),
        ("b/tiny-unet3d", models[1]),
    ]


def test_a_peak_that_cannot_be_restarted_is_not_shown(
    tiny_unet3d: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "CLEAR_REFS", tmp_path / "no-proc" / "clear_refs")
    assert memory.reset_peak_rss() is False
    out = tmp_path / "report"
    settings = CompareSettings([str(tiny_unet3d)], [0], ["a red ball"], fields=SMALL, encoders=NO_ENCODERS)
    (record,) = run_compare(settings, out, engines=EngineCache()).records
    assert "rss" not in record["peak_memory_mb"] and "cannot restart" in record["peak_memory_note"]
    assert _rows(out)[0]["peak_rss_mb"] == ""
    html = (out / "index.html").read_text()
    assert _speed_rows(html)["tiny-unet3d"][5] == "not measured"
    assert "Peak RAM not measured: this system cannot restart" in html


def test_restarting_the_peak_forgets_earlier_memory() -> None:
    held = _touched(200)
    del held
    if not memory.reset_peak_rss():
        pytest.skip("this kernel cannot restart VmHWM")
    assert memory.peak_rss_mb() < memory.resident_mb() + 50


def _record(model: str, values: dict[str, float]) -> dict[str, Any]:
    """A finished cell's record holding only metric values (for the report's tables)."""
    return {
        "model": model,
        "cell": "p000_s0",
        "folder": model,
        "input": {"index": 0, "kind": "prompt", "prompt": "x", "image": None, "label": "x"},
        "seed": 0,
        "status": "ok",
        "files": {"video": f"videos/{model}/p000_s0.mp4"},
        "metrics": {name: {"value": value, "skipped": None} for name, value in values.items()},
    }


def _bold(html: str, label: str) -> list[int]:
    """The columns (0 = first model) shown as best in the metrics table's row ``label``."""
    row = re.search(rf"<tr><th[^>]*>{re.escape(label)}.*?</tr>", html)
    assert row is not None, label
    return [i for i, css in enumerate(re.findall(r'<td class="([^"]*)"', row.group(0))) if "best" in css]


def test_ties_are_not_shown_as_wins(tmp_path: Path) -> None:
    values = {  # higher is better for all three
        "a": {"temporal_flickering": 0.9, "frame_ssim": 0.5, "dynamic_degree": 0.30001},
        "b": {"temporal_flickering": 0.9, "frame_ssim": 0.5, "dynamic_degree": 0.30002},
        "c": {"temporal_flickering": 0.8, "frame_ssim": 0.5, "dynamic_degree": 0.1},
    }
    write_report(tmp_path, [_record(model, v) for model, v in values.items()], {})
    html = (tmp_path / "index.html").read_text()
    assert _bold(html, METRICS["temporal_flickering"].label) == [0, 1]  # a and b share the best
    assert _bold(html, METRICS["frame_ssim"].label) == []  # every model ties: no win
    assert _bold(html, METRICS["dynamic_degree"].label) == [0, 1]  # equal as shown (0.3)
    assert "where every model shares it, none is" in html


def test_long_model_names_are_not_cut_off_under_the_bars(tmp_path: Path) -> None:
    models = ["short", "models/a-very-long-local-model-folder-name-that-goes-on-and-on-v2", "third"]
    summaries = []
    for model in models:
        summary = ModelSummary(model)
        summary.metrics["temporal_flickering"] = Stat(0.9, 0.01, 0.89, 0.91, 2)
        summaries.append(summary)
    assert bar_chart(summaries, tmp_path / "bars.png")
    pixels = np.asarray(Image.open(tmp_path / "bars.png").convert("L"))
    edges = np.concatenate(
        [pixels[:3].ravel(), pixels[-3:].ravel(), pixels[:, :3].ravel(), pixels[:, -3:].ravel()]
    )
    assert edges.min() > 240, "something is drawn up to the image's edge: a name is cut off"
    assert shortened(models[1], 28) == "models/a-very-…-on-and-on-v2" and shortened("short", 28) == "short"


@pytest.mark.parametrize("count", [3, 6, 10, 11])
@pytest.mark.parametrize("end", ["first", "last"])
def test_radar_labels_are_not_clipped(count: int, end: str, tmp_path: Path) -> None:
    names = [name for name, info in METRICS.items() if info.scale and info.higher_is_better]
    names = names[:count] if end == "first" else names[-count:]
    summaries = []
    for model in ("zeroscope-v2-576w", "modelscope-t2v"):
        summary = ModelSummary(model)
        for name in names:
            high = (METRICS[name].scale or (0.0, 1.0))[1]
            summary.metrics[name] = Stat(high, 0.0, high, high, 1)
        summaries.append(summary)
    assert radar_chart(summaries, tmp_path / "radar.png") is None
    pixels = np.asarray(Image.open(tmp_path / "radar.png").convert("L"))
    edges = np.concatenate(
        [pixels[:3].ravel(), pixels[-3:].ravel(), pixels[:, :3].ravel(), pixels[:, -3:].ravel()]
    )
    assert edges.min() > 240, "something is drawn up to the image's edge: a label is cut off"
