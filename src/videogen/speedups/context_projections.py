"""Projections of a video's text computed once, not at every step (exact).

A video's prompt embeddings are the same at every denoising step, so what a transformer computes
from them alone is the same at every step too: its caption projection (Wan's ``text_embedder``,
LTX-Video's ``caption_projection``) and the key and value projections of every cross-attention.
diffusers' pipelines compute them again on every call. While ``remembered`` is active, each module
given to it returns the output it made before for an input equal (``torch.equal``) to one it has seen
in this block, so the output is, bit for bit, what it would compute again; the comparison reads the
input once, against a matrix product with it.

What this saves shrinks as the video grows, because the text stays 512 (Wan) or 128 (LTX-Video)
tokens long while the video's tokens grow: for Wan 2.1 1.3B it is 14% of a call's FLOPs at 336 video
tokens (9 frames 128x224), 2.6% at 1950 (17 frames 240x416) and 0.05% at 81 frames 480x832. The price
is memory: the remembered keys and values of each prompt (Wan 2.1 1.3B in fp32: 189 MB per prompt).
The engines remember on the CPU only (``Speedups.remembers_text``), where those small sizes run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

#: how many distinct inputs one block remembers (a prompt and a negative prompt, per expert, and the
#: few blended texts of prompt travel); an input beyond them is computed as usual
CAPACITY = 8
#: the projection modules of a diffusers cross-attention that read only the text (or image) context
CONTEXT_PROJECTIONS = ("to_k", "to_v", "to_kv", "add_k_proj", "add_v_proj", "to_added_kv")


class _Inputs:
    """The distinct inputs seen in one ``remembered`` block, as private copies (so that nothing the
    caller does to its tensors afterwards can make a stale output look current)."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def index(self, x: torch.Tensor) -> int | None:
        """The index of the input equal to ``x``; a new one while there is room; None when full."""
        for index, seen in enumerate(self.seen):
            alike = seen.shape == x.shape and seen.dtype == x.dtype and seen.device == x.device
            if alike and torch.equal(seen, x):
                return index
        if len(self.seen) == CAPACITY:
            return None
        self.seen.append(x.detach().clone())
        return len(self.seen) - 1


class _Remembering:
    """A module's forward that returns its earlier output for an input it has seen."""

    def __init__(self, forward: Callable[..., torch.Tensor], inputs: _Inputs) -> None:
        self.forward = forward
        self.inputs = inputs
        self.outputs: dict[int, torch.Tensor] = {}

    def __call__(self, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if args or kwargs or not isinstance(x, torch.Tensor):
            return self.forward(x, *args, **kwargs)
        index = self.inputs.index(x)
        if index is None:
            return self.forward(x)
        if index not in self.outputs:
            self.outputs[index] = self.forward(x)
        return self.outputs[index]


def context_projections(attentions: Iterable[nn.Module]) -> list[nn.Module]:
    """The key and value projections (those of them a module has) of the cross-attention modules
    ``attentions``."""
    return [
        getattr(attention, name)
        for attention in attentions
        for name in CONTEXT_PROJECTIONS
        if getattr(attention, name, None) is not None
    ]


@contextlib.contextmanager
def remembered(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Within the block, ``modules`` compute each distinct input once.

    Only for modules whose output the model does not write to in place (the projections above): the
    same tensor is handed out again. Everything remembered is dropped at the end of the block.
    """
    inputs = _Inputs()
    saved = []
    for module in {id(module): module for module in modules}.values():
        saved.append((module, module.__dict__.get("forward")))
        module.forward = _Remembering(module.forward, inputs)
    try:
        yield
    finally:
        for module, forward in saved:
            if forward is None:
                del module.forward
            else:
                module.forward = forward
