"""videogen compare on tiny models: the grid, resuming, --from-dir, the report in a real browser."""

from __future__ import annotations

import csv
import functools
import http.server
import itertools
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from videogen.compare import CellEvent, CompareSettings, run_compare, run_from_dir
from videogen.compare.commands import compare_command
from videogen.compare.inputs import grid_inputs
from videogen.data import default_prompts, default_stills
from videogen.data.stills import STILLS, render_still
from videogen.errors import UserError
from videogen.media import write_mp4
from videogen.metrics import METRICS, EncoderSources
from videogen.metrics.tiny import build_tiny_clip, build_tiny_dino, write_tiny_aesthetic_head
from videogen.testing import build_tiny_model

SMALL = {"num_frames": 4, "height": 64, "width": 64, "steps": 2, "device": "cpu"}
PROMPTS = ["a panda eating bamboo", "ocean waves at sunset"]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> EncoderSources:
    folder = tmp_path_factory.mktemp("encoders")
    clip = build_tiny_clip(folder / "clip")
    head = write_tiny_aesthetic_head(folder / "head.pth", dim=16)
    dino = build_tiny_dino(folder / "dino")
    return EncoderSources(str(clip), str(dino), str(clip), str(head), device="cpu")


@pytest.fixture(scope="module")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model("unet3d", tmp_path_factory.mktemp("models") / "tiny-unet3d-b", seed=1)


@pytest.fixture(scope="module")
def report(
    tiny_unet3d: Path, second_model: Path, encoders: EncoderSources, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Two tiny models x two prompts x one seed, with every metric measured. Tests must not change it."""
    out = tmp_path_factory.mktemp("report")
    settings = CompareSettings(
        [str(tiny_unet3d), str(second_model)], [0], PROMPTS, fields=SMALL, encoders=encoders
    )
    result = run_compare(settings, out)
    assert not result.failures
    return out


def _run_again(out: Path, settings: CompareSettings) -> list[str]:
    events: list[CellEvent] = []
    run_compare(settings, out, on_cell=events.append)
    return [f"{e.stage} {e.cell.model_id} {e.cell.name}" for e in events if e.cell is not None]


def test_report_has_a_row_per_video_and_every_file(report: Path) -> None:
    with (report / "results.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert {(r["model"], r["prompt"], r["seed"]) for r in rows} == {
        (model, prompt, "0") for model in ("tiny-unet3d", "tiny-unet3d-b") for prompt in PROMPTS
    }
    for row in rows:
        assert row["status"] == "ok" and (report / row["video"]).is_file()
        assert float(row["s_per_step"]) > 0 and float(row["peak_rss_mb"]) > 0 and row["steps"] == "2"
        assert 0 <= float(row["temporal_flickering"]) <= 1 and row["clip_text_alignment"] != ""
        assert "clip_image_similarity: not image-conditioned" in row["skipped"]
    data = json.loads((report / "results.json").read_text())
    assert len(data["videos"]) == 4 and set(data["metric_definitions"]) == set(METRICS)
    assert [m["model"] for m in data["models"]] == ["tiny-unet3d", "tiny-unet3d-b"]
    assert data["models"][0]["metrics"]["frame_ssim"]["n"] == 2
    assert data["settings"]["fields"] == SMALL
    for chart in ("metrics.png", "radar.png"):
        assert Image.open(report / "charts" / chart).size[0] > 300
    html = (report / "index.html").read_text()
    assert html.count("<video ") == 4 and "results.csv" in html and "http" not in html.split("<body>")[1]
    for row in rows:
        assert f'src="{row["video"]}"' in html


def test_resumed_run_skips_finished_cells(
    report: Path, tiny_unet3d: Path, second_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(report, out)
    settings = CompareSettings([str(tiny_unet3d), str(second_model)], [0], PROMPTS, fields=SMALL,
                               encoders=EncoderSources(learned=False))  # fmt: skip
    video = out / "videos" / "tiny-unet3d" / "p000_s0.mp4"
    before = video.stat().st_mtime_ns
    assert all(line.startswith("skip") for line in _run_again(out, settings))
    assert video.stat().st_mtime_ns == before
    # An interrupted run leaves no record for the cell it was making: only that cell runs again.
    (out / "videos" / "tiny-unet3d-b" / "p001_s0.json").unlink()
    lines = _run_again(out, settings)
    assert [line for line in lines if not line.startswith("skip")] == ["generate tiny-unet3d-b p001_s0"]
    # Changed settings make every cell stale.
    changed = CompareSettings(settings.models, [0], PROMPTS[:1], fields={**SMALL, "steps": 3},
                              encoders=settings.encoders)  # fmt: skip
    assert _run_again(out, changed) == ["generate tiny-unet3d p000_s0", "generate tiny-unet3d-b p000_s0"]
    # Metrics are measured again only when asked (e.g. after adding encoder weights).
    record = out / "videos" / "tiny-unet3d-b" / "p000_s0.json"
    assert (
        json.loads(record.read_text())["metrics"]["clip_text_alignment"]["skipped"]
        == "learned metrics turned off"
    )
    changed.encoders, changed.recompute_metrics = EncoderSources(device="cpu"), True
    assert _run_again(out, changed) == ["skip tiny-unet3d p000_s0", "skip tiny-unet3d-b p000_s0"]
    assert "Hugging Face cache" in json.loads(record.read_text())["metrics"]["clip_text_alignment"]["skipped"]


def test_image_grid_measures_fidelity_and_records_failed_cells(
    tiny_svd: Path, encoders: EncoderSources, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    images = [*default_stills()[:1], broken]
    settings = CompareSettings([str(tiny_svd)], [3], images=images, fields=SMALL, encoders=encoders)
    result = run_compare(settings, tmp_path / "out")
    good, bad = result.records
    assert good["status"] == "ok" and good["prompt"] is None and good["seed"] == 3
    assert good["files"]["input"].endswith("i000_s3_input.png")
    for name in ("first_frame_ssim", "first_frame_psnr", "clip_image_similarity"):
        assert good["metrics"][name]["value"] is not None, name
    assert good["metrics"]["clip_text_alignment"]["skipped"] == "no prompt"
    assert bad["status"] == "failed" and "not a readable image" in bad["error"]
    html = (tmp_path / "out" / "index.html").read_text()
    assert "failed: " in html and 'src="inputs/000-city-night.png"' in html
    # A failed cell is tried again on the next run; the finished one is kept.
    broken.write_bytes((tmp_path / "out" / "inputs" / "000-city-night.png").read_bytes())
    events: list[CellEvent] = []
    assert not run_compare(settings, tmp_path / "out", on_cell=events.append).failures
    assert [e.stage for e in events if e.stage in ("skip", "generate")] == ["skip", "generate"]


def test_from_dir_evaluates_videos_with_their_sidecars(
    report: Path, encoders: EncoderSources, tmp_path: Path
) -> None:
    stray = report / "videos" / "tiny-unet3d" / "p000_s0.mp4"
    (tmp_path / "other-tool").mkdir()
    shutil.copy(stray, tmp_path / "other-tool" / "clip.mp4")
    shutil.copytree(report / "videos", tmp_path / "made" / "videos")
    shutil.copy(tmp_path / "other-tool" / "clip.mp4", tmp_path / "made" / "clip.mp4")
    result = run_from_dir(tmp_path / "made", tmp_path / "out", encoders)
    by_model: dict[str, list[dict]] = {}
    for record in result.records:
        by_model.setdefault(record["model"], []).append(record)
    assert sorted(by_model) == ["made", "tiny-unet3d", "tiny-unet3d-b"]
    assert {r["prompt"] for r in by_model["tiny-unet3d"]} == set(PROMPTS)
    assert all(r["seed"] == 0 and r["timings"]["s_per_step"] > 0 for r in by_model["tiny-unet3d"])
    (stray_record,) = by_model["made"]
    assert (
        stray_record["seed"] is None
        and stray_record["metrics"]["clip_text_alignment"]["skipped"] == "no prompt"
    )
    with (tmp_path / "out" / "results.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 5


def test_mistakes_fail_before_any_video_is_made(tiny_unet3d: Path, tiny_svd: Path, tmp_path: Path) -> None:
    def run(**kwargs: object) -> str:
        settings = CompareSettings(
            **{"models": [str(tiny_unet3d)], "prompts": PROMPTS, "fields": SMALL, **kwargs}
        )
        with pytest.raises(UserError) as error:
            run_compare(settings, tmp_path)
        return str(error.value)

    assert "known models" in run(models=["no-such-model"])
    missing = run(models=["modelscope-t2v"])
    assert "not in the Hugging Face cache" in missing and "videogen download modelscope-t2v" in missing
    assert "set per cell by compare" in run(fields={**SMALL, "seed": 1})
    assert "steps" in run(fields={**SMALL, "steps": 0})
    assert "need a prompt" in run(models=[str(tiny_unet3d), str(tiny_svd)], prompts=None)
    assert not list(tmp_path.rglob("*.mp4"))


def test_rows_pair_images_with_one_prompt_or_one_prompt_each() -> None:
    assert [row.key for row in grid_inputs(PROMPTS, None)] == ["p000", "p001"]
    rows = grid_inputs(["a still scene"], ["inputs/a.png", "inputs/b.png"])
    assert [(r.key, r.prompt, r.image) for r in rows] == [
        ("i000", "a still scene", "inputs/a.png"),
        ("i001", "a still scene", "inputs/b.png"),
    ]
    assert [r.prompt for r in grid_inputs(PROMPTS, ["inputs/a.png", "inputs/b.png"])] == PROMPTS
    with pytest.raises(UserError, match="2 prompts for 3 images"):
        grid_inputs(PROMPTS, ["x.png", "y.png", "z.png"])


def test_compare_command_errors_are_clean(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(compare_command)
    for args, message in (
        (["--out", str(tmp_path)], "models: give --models"),
        (["--out", str(tmp_path), "--models", "svd", "--seeds", "0,x"], "seeds: '0,x' is not allowed"),
        (
            ["--out", str(tmp_path), "--from-dir", str(tmp_path), "--models", "svd"],
            "from-dir: evaluates existing videos",
        ),
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.stderr
        assert " ".join(result.stderr.split()).startswith(f"error: {message}"), result.stderr


def test_default_prompts_and_stills_ship_with_the_package() -> None:
    prompts = default_prompts()
    assert len(prompts) >= 30 and len(set(prompts)) == len(prompts)
    assert any("camera" in p for p in prompts) and any("style" in p for p in prompts)
    stills = default_stills()
    assert [s.name for s in stills] == sorted(f"{name}.png" for name in STILLS)
    assert sum(len(s.read_bytes()) for s in stills) < 300_000
    for still in stills:
        with Image.open(still) as image:
            drawn = render_still(still.name.removesuffix(".png")).astype(np.int16)
            assert np.abs(np.asarray(image.convert("RGB"), dtype=np.int16) - drawn).max() <= 1, still.name


@contextmanager
def _served(folder: Path) -> Iterator[str]:
    """A report folder over HTTP on 127.0.0.1, as a browser would get it."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/index.html"
    finally:
        server.shutdown()
        thread.join()


@contextmanager
def _browser_page(url: str) -> Iterator[tuple[Any, list[str]]]:
    """``url`` open in headless chromium, and the page's errors as they come."""
    from playwright import sync_api  # the dev extra; only the browser may be missing

    args = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"]  # fmt: skip
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        page = browser.new_page()
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("requestfailed", lambda request: problems.append(f"failed request {request.url}"))
        page.goto(url)
        yield page, problems
        browser.close()


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)


@needs_chromium
def test_report_opens_in_chromium_and_every_video_plays(report: Path) -> None:
    with _served(report) as url, _browser_page(url) as (page, problems):
        # Every player is running and has played some of its video (they loop, so compare time played).
        page.wait_for_function(
            """() => {
                const videos = [...document.querySelectorAll("video")];
                const played = (v) => [...Array(v.played.length).keys()]
                    .reduce((sum, i) => sum + v.played.end(i) - v.played.start(i), 0);
                const playing = (v) => v.readyState >= 2 && !v.paused && played(v) > 0.2;
                return videos.length === 4 && videos.every(playing);
            }""",
            timeout=15_000,
        )
        codecs = page.evaluate("[...document.querySelectorAll('video')].map(v => v.error && v.error.code)")
        page.click("#toggle")
        assert page.evaluate("[...document.querySelectorAll('video')].every(v => v.paused)")
        page.click("#restart")
        assert page.evaluate("[...document.querySelectorAll('video')].every(v => !v.paused)")
    assert codecs == [None] * 4
    assert problems == []


#: Where each player is, sampled on every animation frame for ``ms`` once all have started:
#: [[shorter clip's time, longer clip's time, longer clip's duration, shorter clip's duration], ...]
SAMPLE_PLAYERS = """(ms) => new Promise((resolve) => {
    const videos = [...document.querySelectorAll("video")].sort((a, b) => a.duration - b.duration);
    const samples = [], until = performance.now() + ms;
    const sample = () => {
        samples.push([videos[0].currentTime, videos[1].currentTime, videos[1].duration, videos[0].duration]);
        performance.now() < until ? requestAnimationFrame(sample) : resolve(samples);
    };
    sample();
})"""


@pytest.fixture(scope="module")
def uneven_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of two clips, 1 s and 2.5 s long (videos from another tool, one folder each)."""
    made, out = tmp_path_factory.mktemp("uneven"), tmp_path_factory.mktemp("uneven-report")
    for name, frames in (("short", 8), ("long", 20)):
        ramp = np.linspace(0, 255, frames, dtype=np.uint8)[:, None, None, None]
        (made / name).mkdir()
        write_mp4(np.broadcast_to(ramp, (frames, 64, 64, 3)).copy(), made / name / "clip.mp4", 8.0)
    run_from_dir(made, out, EncoderSources(learned=False))
    return out


@needs_chromium
def test_players_of_different_lengths_stay_in_step(uneven_report: Path) -> None:
    """The shorter clip waits on its last frame until the longer one ends; then both restart."""
    with _served(uneven_report) as url, _browser_page(url) as (page, problems):
        page.wait_for_function(
            "[...document.querySelectorAll('video')].every(v => v.readyState >= 2 && v.currentTime > 0)",
            timeout=15_000,
        )
        samples = page.evaluate(SAMPLE_PLAYERS, 6_000)
    short_length = samples[0][3]
    assert short_length == pytest.approx(1.0, abs=0.05) and samples[0][2] == pytest.approx(2.5, abs=0.05)
    # Both looped (the longer one went back to the start at least twice) ...
    restarts = sum(1 for before, after in itertools.pairwise(samples) if after[1] < before[1] - 1)
    assert restarts >= 2, samples
    # ... and at every moment the shorter one is where the longer one is, or waits at its end.
    drift = max(abs(short - min(long, short_length)) for short, long, _, _ in samples)
    assert drift < 0.3, f"the players drifted {drift:.2f} s apart"
    assert problems == []
