"""Exact speed and memory measures for loaded engines: same output within float rounding.

Each measure is a switch of ``Speedups`` so that ``videogen bench --ablate`` can show its effect
alone. The defaults are what measured faster or leaner on this project's machines (BENCHMARKS.md);
``channels_last`` stays off because it measured slower on the CPU here and could not be measured on
a GPU yet, ``compile`` because its first call compiles for minutes.

``generate`` refuses ``compile`` on the CPU (``check_compile``): Inductor took 150 s there to compile
even the tiny test model's UNet, more than a CPU generation gains back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from videogen import HUGE_PAGES
from videogen.errors import FieldError
from videogen.speedups.context_projections import context_projections, remembered
from videogen.speedups.fused_activation import use_fused_activations
from videogen.speedups.offload import offload
from videogen.speedups.onednn_linear import onednn_by_default, onednn_linear_available, use_onednn_linear
from videogen.speedups.video_vae import use_lean_video_vae
from videogen.speedups.weight_pages import release_pages_after_forward

__all__ = ["DEFAULT_SPEEDUPS", "Speedups", "check_compile", "prepare_modules"]


@dataclass(frozen=True)
class Speedups:
    """How an engine runs its modules. Every switch leaves the output equal within float rounding."""

    #: CPU fp32 linear layers through oneDNN instead of MKL (about 2x on AMD; on by default except on
    #: Intel CPUs, where MKL is as fast or faster: ``onednn_by_default``)
    onednn_linear: bool = field(default_factory=onednn_by_default)
    #: CPU: feed-forward GEGLU/GELU as oneDNN post-operations of their linear layer (``fused_activation``)
    fused_activation: bool = True
    #: CPU: each block drops its memory-mapped weight pages after it ran (the page cache keeps them)
    release_weights: bool = True
    #: CPU: Wan's and LTX's VAEs convolve in oneDNN only and copy less (``speedups.video_vae``)
    lean_vae: bool = True
    #: Wan, LTX-Video: the prompt's caption projection and cross-attention keys and values computed once
    #: per video, not at every call (``speedups.context_projections``); on the CPU, not with ``offload``
    context_cache: bool = True
    #: one projection for query, key and value in the models where it measured faster (``FUSED_QKV_MODELS``)
    fused_qkv: bool = True
    #: convolution weights in channels-last memory format
    channels_last: bool = False
    #: scaled-dot-product attention backend: "auto" (PyTorch chooses), math, flash, efficient, cudnn
    attention: str = "auto"
    #: torch.compile the denoiser (opt-in: the first call compiles)
    compile: bool = False
    #: CUDA only: "model", "sequential" or "group" CPU offload
    offload: str | None = None
    #: Wan: "cpu" keeps the UMT5 text encoder on the CPU (its embeddings move to the device)
    text_encoder_device: str = "auto"
    #: Wan: "fp8" stores the transformers' weights in float8 (not exact: a loss, for memory)
    weights_dtype: str | None = None
    #: torch.inference_mode rather than no_grad
    inference_mode: bool = True

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The autograd mode and attention backend a generation runs under."""
        grad_free = torch.inference_mode() if self.inference_mode else torch.no_grad()
        with grad_free, _attention_backend(self.attention):
            yield

    def remembers_text(self, device: torch.device) -> bool:
        """Whether ``remembering_text`` remembers on ``device``: with ``context_cache``, on the CPU, and
        with nothing offloaded (there memory is what is short, and the remembered keys and values
        take some). Not on a GPU: there the comparison of each input would wait for the device at
        every projection, and the projections are a negligible share of a call at a GPU's sizes."""
        return self.context_cache and device.type == "cpu" and self.offload is None

    def remembering_text(
        self, device: torch.device, attentions: Sequence[nn.Module], captions: Sequence[nn.Module]
    ) -> contextlib.AbstractContextManager:
        """Within the block the cross-attention modules ``attentions`` and the caption projections
        ``captions`` compute each prompt's projections once (where ``remembers_text``)."""
        if not self.remembers_text(device):
            return contextlib.nullcontext()
        return remembered([*captions, *context_projections(attentions)])


DEFAULT_SPEEDUPS = Speedups()
#: Models whose attention runs faster with fused projections. Not Wan's transformer: at its CPU bench
#: shapes the fused GEMM measured no faster (slower at 1950 tokens), and the fused copy is anonymous
#: memory next to the memory-mapped weights, so it also costs resident memory and load time.
FUSED_QKV_MODELS = ("UNet3DConditionModel",)


def check_compile(compile: bool, device: torch.device) -> None:
    """torch.compile is offered where it pays: on the CPU its first call compiles for minutes."""
    if compile and device.type == "cpu":
        raise FieldError(
            "compile",
            compile,
            "torch.compile is for CUDA devices; on the CPU compiling takes minutes, more than it saves",
        )


def _attention_backend(name: str) -> contextlib.AbstractContextManager:
    if name == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {
        "math": SDPBackend.MATH,
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
    }
    return sdpa_kernel([backends[name]])


def prepare_modules(
    modules: Sequence[nn.Module], denoiser: nn.Module, device: torch.device, speedups: Speedups
) -> dict[str, object]:
    """Apply ``speedups`` to an engine's loaded modules (in the order they run) and move them to ``device``.

    Returns what was applied, for the record. Offloaded modules stay on the CPU; accelerate's hooks
    bring each to ``device`` when it runs.
    """
    applied: dict[str, object] = {}
    for module in modules:
        if speedups.fused_qkv and type(module).__name__ in FUSED_QKV_MODELS:
            module.fuse_qkv_projections()
            applied["fused_qkv"] = True
        if speedups.channels_last:
            for layer in module.modules():
                if isinstance(layer, nn.Conv2d):
                    layer.to(memory_format=torch.channels_last)
            applied["channels_last"] = True
        module.eval().requires_grad_(False)
        if speedups.offload is None:
            module.to(device)
    if device.type == "cpu" and HUGE_PAGES:  # a process-wide setting (``videogen.HUGE_PAGES_VARIABLE``)
        applied["huge_pages"] = True
    # Inductor lowers linear layers itself and cannot trace the oneDNN operator
    if device.type == "cpu" and speedups.onednn_linear and not speedups.compile and onednn_linear_available():
        applied["onednn_linear_layers"] = sum(use_onednn_linear(module) for module in modules)
    if (
        device.type == "cpu"
        and speedups.fused_activation
        and not speedups.compile
        and onednn_linear_available()
    ):
        fused = sum(use_fused_activations(module) for module in modules)
        if fused:
            applied["fused_activations"] = fused
    if device.type == "cpu" and speedups.lean_vae and not speedups.compile:
        lean = sum(use_lean_video_vae(module) for module in modules)
        if lean:
            applied["lean_vae_modules"] = lean
    if device.type == "cpu" and speedups.release_weights and not speedups.compile:
        covered = sum(release_pages_after_forward(module) for module in modules)
        applied["released_weight_mb"] = round(covered / 2**20, 1)
    if speedups.offload is not None:
        offload(modules, device, speedups.offload)
        applied["offload"] = speedups.offload
    if speedups.compile:
        denoiser.compile()
        applied["compile"] = True
    return applied
