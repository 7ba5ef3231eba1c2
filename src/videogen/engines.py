"""The engines of the model families, and the cache that keeps them loaded between generations."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from videogen.families.base import GeneratedVideo, Inputs
from videogen.request import Request
from videogen.sampling.progress import Reporter
from videogen.speedups import DEFAULT_SPEEDUPS, Speedups


class Engine(Protocol):
    """What a family engine offers to the generation front door."""

    family: str
    device: torch.device
    dtype: torch.dtype
    speedups: Speedups

    def generate(
        self, request: Request, seeds: list[int], report: Reporter, inputs: Inputs | None = None
    ) -> list[GeneratedVideo]: ...

    def decode_saved(self, saved: dict[str, torch.Tensor], chunk: int | None) -> tuple[np.ndarray, int]: ...


def load_engine(
    family: str,
    folder: Path,
    device: torch.device,
    dtype: torch.dtype,
    variant: str | None,
    speedups: Speedups = DEFAULT_SPEEDUPS,
) -> Engine:
    """Load the engine of ``family`` from a diffusers-layout folder."""
    if family == "unet3d":
        from videogen.families.unet3d import UNet3DEngine

        return UNet3DEngine.load(folder, device, dtype, variant, speedups)
    elif family == "svd":
        from videogen.families.svd import SVDEngine

        return SVDEngine.load(folder, device, dtype, variant, speedups)
    elif family == "wan":
        from videogen.families.wan import WanEngine

        return WanEngine.load(folder, device, dtype, variant, speedups)
    elif family == "ltx":
        from videogen.families.ltx import LTXEngine

        return LTXEngine.load(folder, device, dtype, variant, speedups)
    raise ValueError(f"unknown model family {family!r}")


class EngineCache:
    """Keeps the most recently used engines loaded, keyed by (folder, variant, device, dtype, speedups)."""

    def __init__(self, max_engines: int = 1) -> None:
        self.max_engines = max_engines
        self._engines: OrderedDict[tuple, Engine] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        family: str,
        folder: Path,
        device: torch.device,
        dtype: torch.dtype,
        variant: str | None,
        speedups: Speedups = DEFAULT_SPEEDUPS,
    ) -> Engine:
        key = (str(folder), variant, str(device), dtype, speedups)
        with self._lock:
            if key in self._engines:
                self._engines.move_to_end(key)
                return self._engines[key]
            while len(self._engines) >= self.max_engines:
                self._engines.popitem(last=False)
            engine = load_engine(family, folder, device, dtype, variant, speedups)
            self._engines[key] = engine
            return engine

    def preload(self, model: str) -> None:
        """Load ``model``'s engine (a catalog id or a local folder) as a job with defaults would."""
        from videogen.catalog import resolve_model
        from videogen.loading import locate_weights, resolve_device, resolve_dtype

        spec = resolve_model(model)
        device = resolve_device("auto")
        folder = locate_weights(spec, spec.revision, spec.variant)
        self.get(spec.family, folder, device, resolve_dtype("auto", device), spec.variant)

    def clear(self) -> None:
        with self._lock:
            self._engines.clear()


ENGINES = EngineCache()
