"""``videogen selftest``: every engine end to end on tiny random weights, offline."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from videogen.engines import EngineCache
from videogen.errors import UserError
from videogen.generate import generate
from videogen.media import read_video
from videogen.request import Request
from videogen.testing import build_tiny_model

_SHAPE = {"num_frames": 4, "height": 64, "width": 64, "steps": 2}
#: tiny model kind -> request fields of a small run that exercises the whole path.
#: ``image`` is replaced by a still the selftest draws itself.
CASES: dict[str, dict] = {
    "unet3d": {"prompt": "a panda eating bamboo", **_SHAPE},
    "svd": {"image": "still", "watermark": False, **_SHAPE},
    "sv3d-p": {"image": "still", "camera_path": "wave", "watermark": False, **_SHAPE},
    "wan-t2v": {"prompt": "a panda eating bamboo", **_SHAPE, "num_frames": 5},
    "ltx": {"prompt": "a panda eating bamboo", **_SHAPE, "num_frames": 9},
}


@dataclass
class SelftestResult:
    family: str
    ok: bool
    seconds: float
    detail: str


def run_selftest(keep: Path | None = None) -> list[SelftestResult]:
    """Build each family's tiny model, generate with it, and decode the mp4 it wrote."""
    with tempfile.TemporaryDirectory(prefix="videogen-selftest-") as tmp:
        root = keep or Path(tmp)
        return [_run_case(family, fields, root) for family, fields in CASES.items()]


def _run_case(family: str, fields: dict, root: Path) -> SelftestResult:
    started = time.perf_counter()
    try:
        model_dir = build_tiny_model(family, root / f"tiny-{family}")
        if "image" in fields:
            fields = {**fields, "image": str(draw_still(root / "still.png"))}
        request = Request(model=str(model_dir), seed=0, device="cpu", out_dir=str(root / "outputs"), **fields)
        result = generate(request, engines=EngineCache())
        frames, _ = read_video(result.videos[0].files["mp4"])
        expected = (fields["num_frames"], fields["height"], fields["width"], 3)
        ok = frames.shape == expected
        detail = f"mp4 {frames.shape[0]} frames {frames.shape[2]}x{frames.shape[1]}"
        if not ok:
            detail += f", expected {expected}"
    except (UserError, RuntimeError, OSError, ValueError) as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return SelftestResult(family, ok, time.perf_counter() - started, detail)


def draw_still(path: Path) -> Path:
    """A transparent canvas with an opaque coloured disc: an object to animate or orbit."""
    image = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse(
        (24, 20, 72, 76), fill=(220, 80, 40, 255), outline=(30, 30, 120, 255), width=4
    )
    image.save(path)
    return path
