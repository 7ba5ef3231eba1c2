"""Default comparison inputs shipped with videogen: a prompt set and still images it draws itself."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def parse_prompts(text: str) -> list[str]:
    """One prompt per line; blank lines and lines starting with ``#`` are skipped."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def default_prompts() -> list[str]:
    """The default prompt set: subjects, camera and object motion, and styles."""
    return parse_prompts(resources.files(__name__).joinpath("prompts.txt").read_text(encoding="utf-8"))


def default_stills() -> list[Traversable]:
    """The default still images (PNG, 512x288), in name order; read them with ``read_bytes()``."""
    stills = resources.files(__name__).joinpath("stills")
    return sorted((item for item in stills.iterdir() if item.name.endswith(".png")), key=lambda i: i.name)
