"""A folder as ``image``: every image in it runs in turn, each with its own seed.

One bad image is reported and skipped; the rest still run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from videogen.engines import ENGINES, EngineCache
from videogen.errors import FieldError, UserError
from videogen.generate import GenerationResult, generate
from videogen.media.outputs import writable_folder
from videogen.request import Request
from videogen.resolve import resolve
from videogen.sampling.progress import CancelFlag, ProgressCallback

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
) -> BatchResult:
    """Run the request once per image of its folder; image k starts at seed + k * num_videos."""
    shared = resolve(request)  # a mistake in the shared settings fails once, before any image runs
    writable_folder("out_dir", request.out_dir)
    images = folder_images(Path(request.image))
    seed, was_random = shared.seed, shared.seed_was_random
    batch = BatchResult(seed=seed, seed_was_random=was_random)
    for index, image in enumerate(images):
        item = request.model_copy(update={"image": str(image), "seed": seed + index * request.num_videos})
        try:
            batch.results.append(generate(item, progress, cancel, engines))
        except UserError as exc:
            batch.failures[image.name] = str(exc)
    return batch
