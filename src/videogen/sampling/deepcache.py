"""DeepCache-style reuse of a UNet's deep features between denoising steps (Ma et al., CVPR 2024).

Between neighbouring steps the deep, low-resolution features of a UNet change little. Every
``interval``-th step runs the whole UNet and keeps what its deep blocks returned; the steps between
run only the shallow path (input convolution, the first down block, the last up block and the output
head) and take the deep blocks' results from that step. Both UNet families have the same block lists
(``down_blocks``, ``mid_block``, ``up_blocks``), so one cache serves both: the deep blocks are every
down block but the first, the mid block and every up block but the last.

The skipped blocks are replaced for one call by stubs that hand back their cached outputs, so the
stock forward runs unchanged around them. When classifier-free guidance stops (``guidance_end``), the
batch halves from [unconditional, conditional] to the conditional half, and the cache is sliced to
that half rather than refreshed, so the count of full evaluations stays ``ceil(steps / interval)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn


def _map_tensors(value: Any, function: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return function(value)
    if isinstance(value, tuple):
        return tuple(_map_tensors(item, function) for item in value)
    return value


class DeepCache:
    """Runs a UNet in full every ``interval`` steps and on its shallow path in between."""

    def __init__(self, unet: nn.Module, interval: int) -> None:
        if interval < 1:
            raise ValueError(f"cache interval must be >= 1, not {interval}")
        self.interval = interval
        self.deep_blocks: list[nn.Module] = [*unet.down_blocks[1:], unet.mid_block, *unet.up_blocks[:-1]]
        self._outputs: dict[int, Any] = {}
        self._batch = 0
        #: UNet evaluations so far, one per batch item
        self.full_evaluations = 0
        self.shallow_evaluations = 0

    def is_full(self, step: int) -> bool:
        """Whether step ``step`` (from 0) runs the whole UNet."""
        return self.interval == 1 or step % self.interval == 0

    @contextlib.contextmanager
    def step(self, step: int, batch: int) -> Iterator[None]:
        """Wrap the UNet call of ``step`` on ``batch`` items (2 with guidance: unconditional, conditional)."""
        if self.is_full(step):
            with self._capturing(batch):
                yield
            self.full_evaluations += batch
        else:
            with self._replaying(batch):
                yield
            self.shallow_evaluations += batch

    @contextlib.contextmanager
    def _capturing(self, batch: int) -> Iterator[None]:
        if self.interval == 1:  # nothing is ever replayed: keep nothing
            yield
            return
        self._outputs.clear()
        self._batch = batch

        def keep(index: int) -> Callable[..., None]:
            return lambda module, args, output: self._outputs.__setitem__(index, output)

        handles = [block.register_forward_hook(keep(i)) for i, block in enumerate(self.deep_blocks)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @contextlib.contextmanager
    def _replaying(self, batch: int) -> Iterator[None]:
        if not self._outputs:
            raise RuntimeError("DeepCache: a shallow step came before any full step")
        if batch == self._batch:
            outputs = self._outputs
        elif self._batch == 2 * batch:  # guidance ended: keep the conditional half
            outputs = {i: _map_tensors(o, lambda t: t[len(t) // 2 :]) for i, o in self._outputs.items()}
        else:
            raise RuntimeError(f"DeepCache: cached a batch of {self._batch}, asked for {batch}")
        for index, block in enumerate(self.deep_blocks):
            block.forward = lambda *args, _output=outputs[index], **kwargs: _output
        try:
            yield
        finally:
            for block in self.deep_blocks:
                del block.forward

    def record(self) -> dict[str, int]:
        """The evaluations made, for the sidecar (see ``presets.unet_evaluations`` for the formula)."""
        return {
            "cache_interval": self.interval,
            "unet_evaluations": self.full_evaluations,
            "unet_shallow_evaluations": self.shallow_evaluations,
        }
