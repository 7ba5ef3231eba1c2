"""How the time of a batch of jobs scales with the pool's workers, on a local Ray cluster.

``python -m videogen.cluster.measure --model FOLDER --jobs 8 --workers 1 --workers 2`` runs the same
folder of generated stills once per pool size (the pool started and its model loaded before the
clock starts, as on a server that is up) and prints the seconds and the ratio to the first size.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from PIL import Image

from videogen.batch import generate_batch
from videogen.cluster.connection import import_ray
from videogen.cluster.pool import WorkerPool
from videogen.request import parse_request


def measure(
    model: Annotated[Path, typer.Option(help="An image-to-video diffusers folder (e.g. a tiny SVD).")],
    jobs: Annotated[int, typer.Option(min=1)] = 8,
    workers: Annotated[list[int] | None, typer.Option(help="Pool sizes to time; repeatable.")] = None,
    steps: Annotated[int, typer.Option(min=1)] = 40,
    size: Annotated[int, typer.Option(min=32, help="Height and width.")] = 64,
) -> None:
    sizes = workers or [1, 2]
    ray = import_ray()
    ray.init(num_cpus=max(sizes), include_dashboard=False, log_to_driver=False)
    seconds: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        stills = Path(folder) / "stills"
        stills.mkdir()
        for number in range(jobs):
            Image.new("RGB", (size, size), (30 * number % 256, 100, 200)).save(stills / f"still{number}.png")
        fields = {"model": str(model), "image": str(stills), "num_frames": 8, "height": size, "width": size}
        fields.update(steps=steps, seed=0, device="cpu")
        for count in sizes:
            pool = WorkerPool(count)
            pool.preload(str(model))
            started = time.perf_counter()
            batch = generate_batch(parse_request({**fields, "out_dir": f"{folder}/out{count}"}), pool=pool)
            seconds[count] = time.perf_counter() - started
            pool.close()
            if batch.failures:
                raise SystemExit(f"failed: {batch.failures}")
    first = sizes[0]
    rows = [
        {"workers": n, "seconds": round(s, 2), "ratio": round(s / seconds[first], 3)}
        for n, s in seconds.items()
    ]
    print(json.dumps({"jobs": jobs, "steps": steps, "size": size, "runs": rows}, indent=2))


if __name__ == "__main__":
    typer.run(measure)
