"""Timing and memory of one generation, measured the same way on videogen's engine and on the stock
diffusers pipeline: hooks on the same modules of both."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class Meter:
    """Seconds spent in each stage (sum over calls), UNet calls and the items they carried."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.unet_calls = 0
        self.unet_items = 0

    def time_unet(self, unet: nn.Module) -> None:
        """Time every UNet forward and count the batch items it evaluates."""
        started: list[float] = []

        def before(module: nn.Module, args: tuple, kwargs: dict) -> None:
            sample = args[0] if args else kwargs.get("sample", kwargs.get("hidden_states"))
            self.unet_calls += 1
            self.unet_items += len(sample)
            started.append(time.perf_counter())

        def after(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            self.seconds["unet"] += time.perf_counter() - started.pop()

        unet.register_forward_pre_hook(before, with_kwargs=True)
        unet.register_forward_hook(after, with_kwargs=True)

    def time_method(self, owner: object, method: str, stage: str) -> None:
        """Add the time of every ``owner.method(...)`` call to ``stage``."""
        original: Callable = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start

        setattr(owner, method, timed)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
