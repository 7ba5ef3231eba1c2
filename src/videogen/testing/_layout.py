"""Writing a diffusers pipeline folder component by component."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import diffusers
import torch


class _Savable(Protocol):
    def save_pretrained(self, save_directory: str | Path, **kwargs: object) -> object: ...


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU RNG for the block, so weights depend only on ``seed``.

    The caller's RNG state is restored afterwards: building a model must not change the random
    numbers a test draws next.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def save_component(folder: Path, name: str, component: _Savable) -> None:
    """Save one model or scheduler under ``folder/name``.

    Weights go to safetensors: it is the default of diffusers and of transformers >= 4.35, and
    transformers 5 has no other format (it silently swallows a ``safe_serialization`` kwarg).
    """
    component.save_pretrained(folder / name)


def save_random_model(folder: Path, name: str, make: Callable[[], _Savable], seed: int) -> None:
    """Build a model with weights drawn from ``seed`` and save it under ``folder/name``."""
    with seeded(seed):
        model = make()
    save_component(folder, name, model)


def write_model_index(folder: Path, pipeline_class: str, components: dict[str, tuple[str, str]]) -> None:
    """Write ``model_index.json``: the pipeline class and each component's (library, class)."""
    index: dict[str, object] = {"_class_name": pipeline_class, "_diffusers_version": diffusers.__version__}
    index.update({name: list(spec) for name, spec in sorted(components.items())})
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
