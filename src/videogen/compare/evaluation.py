"""The metrics phase of a comparison: every finished video without metrics gets them, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from videogen.compare.cells import record_path, write_record
from videogen.compare.events import CellCallback, CellEvent
from videogen.media import read_video
from videogen.metrics import Evaluator


def evaluate_records(
    records: list[dict[str, Any]],
    out: Path,
    evaluator: Evaluator,
    recompute: bool = False,
    on_cell: CellCallback | None = None,
) -> None:
    """Add ``metrics`` to each ok record that lacks them (all ok records with ``recompute``) and save it.

    The prompt is the one the model was given; the input image is the fitted one saved beside
    the video, so first-frame fidelity compares like with like.
    """
    todo = [r for r in records if r.get("status") == "ok" and (recompute or "metrics" not in r)]
    for done, record in enumerate(todo):
        if on_cell is not None:
            on_cell(CellEvent("evaluate", done, len(todo), note=f"{record['model']} {record['cell']}"))
        files = record["files"]
        frames, fps = read_video(out / files["video"])
        image = None
        if "input" in files:
            with Image.open(out / files["input"]) as still:
                image = np.asarray(still.convert("RGB"))
        results = evaluator.evaluate(frames, fps, record.get("prompt"), image)
        record["metrics"] = {name: result.to_json() for name, result in results.items()}
        write_record(record_path(out, record), record)
