"""The rows of a comparison grid: prompts, still images, or images each paired with a prompt."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from videogen.batch import IMAGE_SUFFIXES
from videogen.data import parse_prompts
from videogen.errors import UserError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

INPUTS_DIR = "inputs"


@dataclass(frozen=True)
class GridInput:
    """One row: a prompt, an image (a path relative to the report folder), or both."""

    index: int
    prompt: str | None = None
    image: str | None = None

    @property
    def kind(self) -> str:
        return "image" if self.image else "prompt"

    @property
    def key(self) -> str:
        """Short, file-name-safe id of the row: p000 for prompts, i000 for images."""
        return f"{self.kind[0]}{self.index:03d}"

    @property
    def label(self) -> str:
        """What people see for the row: the prompt, else the image's file name."""
        if self.prompt or self.image:
            return self.prompt or Path(self.image or "").name
        return "(no prompt or image recorded)"

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "kind": self.kind,
            "prompt": self.prompt,
            "image": self.image,
            "label": self.label,
        }


def read_prompt_file(path: Path) -> list[str]:
    """Prompts from a text file, one per line (blank lines and # comments skipped)."""
    try:
        prompts = parse_prompts(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"prompts: cannot read {str(path)!r}: {exc}") from None
    if not prompts:
        raise UserError(f"prompts: {str(path)!r} holds no prompts (one per line; # starts a comment)")
    return prompts


def image_files(path: Path) -> list[Path]:
    """An image file, or the images of a folder in name order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"images: {str(path)!r} is neither an image nor a folder")
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise UserError(f"images: the folder {str(path)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return found


def stage_images(images: list[Path | Traversable], out: Path) -> list[str]:
    """Copy the input images into ``out/inputs`` (so the report is self-contained); return their
    paths relative to ``out``."""
    folder = out / INPUTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    staged = []
    for index, image in enumerate(images):
        target = folder / f"{index:03d}-{image.name}"
        if isinstance(image, Path):
            shutil.copyfile(image, target)
        else:
            target.write_bytes(image.read_bytes())
        staged.append(target.relative_to(out).as_posix())
    return staged


def grid_inputs(prompts: list[str] | None, images: list[str] | None) -> list[GridInput]:
    """Rows from prompts, images, or both: one prompt for every image, or one prompt per image."""
    if not images:
        return [GridInput(index, prompt=prompt) for index, prompt in enumerate(prompts or [])]
    if not prompts:
        return [GridInput(index, image=image) for index, image in enumerate(images)]
    if len(prompts) == 1:
        prompts = prompts * len(images)
    if len(prompts) != len(images):
        raise UserError(
            f"prompts: {len(prompts)} prompts for {len(images)} images; with --images give one prompt "
            "for all of them or one per image (in the images' name order)"
        )
    return [
        GridInput(index, prompt=p, image=i) for index, (p, i) in enumerate(zip(prompts, images, strict=True))
    ]
