"""A folder as ``image``: every image in it runs, each with its own seed: in turn here, or on a
Ray pool's actors at once (``--ray``).

One bad image is reported and skipped; the rest still run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from videogen.cluster.fanout import fan_out
from videogen.engines import ENGINES, EngineCache
from videogen.errors import FieldError, UserError
from videogen.generate import GenerationResult, generate
from videogen.media.outputs import writable_folder
from videogen.request import Request
from videogen.resolve import resolve
from videogen.sampling.progress import CancelFlag, ProgressCallback

if TYPE_CHECKING:
    from videogen.cluster.pool import WorkerPool

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass
class BatchResult:
    """What a folder run wrote, and which images failed and why."""

    seed: int
    seed_was_random: bool
    results: list[GenerationResult] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "seed": self.seed,
            "seed_was_random": self.seed_was_random,
            "items": [{"image": r.request.image, **r.to_json()} for r in self.results],
            "failures": self.failures,
        }


def is_batch(request: Request) -> bool:
    """Whether the request's image is a folder of images."""
    return bool(request.image) and Path(request.image).is_dir()


def folder_images(folder: Path) -> list[Path]:
    """Image files of a folder, in name order."""
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FieldError("image", str(folder), f"the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return images


def generate_batch(
    request: Request,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    engines: EngineCache = ENGINES,
    pool: WorkerPool | None = None,
) -> BatchResult:
    """Run the request once per image of its folder; image k starts at seed + k * num_videos.

    With a ``pool`` the images run on its actors, as many at once as it has.
    """
    shared = resolve(request)  # a mistake in the shared settings fails once, before any image runs
    writable_folder("out_dir", request.out_dir)
    images = folder_images(Path(request.image))
    seed, was_random = shared.seed, shared.seed_was_random
    batch = BatchResult(seed=seed, seed_was_random=was_random)
    items = [
        request.model_copy(update={"image": str(image), "seed": seed + index * request.num_videos})
        for index, image in enumerate(images)
    ]

    cancel = cancel or threading.Event()

    def run(item: Request) -> GenerationResult | UserError:
        try:
            if pool is not None:
                return pool.run_retrying(item, progress, cancel)
            return generate(item, progress, cancel, engines)
        except UserError as exc:
            return exc

    outcomes = [run(item) for item in items] if pool is None else fan_out(run, items, pool.size, cancel)
    for image, outcome in zip(images, outcomes, strict=True):
        if isinstance(outcome, UserError):
            batch.failures[image.name] = str(outcome)
        else:
            batch.results.append(outcome)
    return batch
