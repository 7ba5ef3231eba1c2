"""Offloading weights to the CPU between uses, for GPUs with less memory than the model needs.

``model``: each whole component (encoder, UNet, VAE) moves to the GPU when it runs and back when
the next one starts; costs little time, saves the encoder's and the VAE's share. ``sequential``:
every layer's weights move to the GPU just for its own forward; the least memory, the most time.
Both are accelerate's hooks, which diffusers' own ``enable_*_cpu_offload`` use as well. ``group``:
diffusers' group offloading at leaf level, each layer's weights brought in ahead of its use on a
CUDA stream: about sequential's memory at a fraction of its time (leaf level, because a VAE runs
through ``decode`` and block-level hooks sit on ``forward``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

OFFLOAD_MODES = ("model", "sequential", "group")


def offload(modules: Sequence[nn.Module], execution_device: torch.device, mode: str) -> None:
    """Keep ``modules`` (on the CPU, in the order they run) off ``execution_device`` between uses."""
    from accelerate import cpu_offload, cpu_offload_with_hook

    if mode == "sequential":
        for module in modules:
            cpu_offload(module, execution_device)
        return
    if mode == "group":
        from diffusers.hooks import apply_group_offloading

        for module in modules:
            streamed = execution_device.type == "cuda"
            apply_group_offloading(module, execution_device, offload_type="leaf_level", use_stream=streamed)
        return
    if mode != "model":
        raise ValueError(f"offload mode {mode!r}; known: {', '.join(OFFLOAD_MODES)}")
    previous = None
    for module in modules:
        _, previous = cpu_offload_with_hook(module, execution_device, prev_module_hook=previous)
