"""Linear layers through oneDNN on the CPU, where MKL is not at full speed.

PyTorch sends fp32 ``nn.Linear`` on the CPU to MKL's sgemm. MKL chooses its code path by the CPU's
vendor: on the AMD EPYC machines this project is measured on, its sgemm ran at half the rate oneDNN
reaches for the same matrices (oneDNN already does the convolutions), and the linear layers are
about 60% of a UNet's time. On the Intel Xeon machines it is at full speed, and faster than oneDNN
for the transformers' products (Wan 2.1 1.3B: a call 5-7% faster at 336 and 1950 tokens; LTX-Video
2B about 4%), so there the stock path is kept (``onednn_by_default``). The result differs only by
float rounding (a different summation order): BENCHMARKS.md has the measurements.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def onednn_linear_available() -> bool:
    """Whether this PyTorch build has oneDNN and its fused linear operator."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._linear_pointwise  # noqa: B018 - looking the operator up is the check
    except (AttributeError, RuntimeError):
        return False
    return True


@functools.cache
def onednn_by_default() -> bool:
    """Whether linear layers go to oneDNN unless asked otherwise: everywhere but on an Intel CPU
    with PyTorch's MKL (``/proc/cpuinfo`` names the vendor; where it cannot be read, oneDNN)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    return prefers_onednn(cpuinfo, torch.backends.mkl.is_available())


def prefers_onednn(cpuinfo: str, mkl: bool) -> bool:
    """oneDNN unless PyTorch has MKL and ``cpuinfo`` (the text of /proc/cpuinfo) is an Intel CPU's."""
    return not (mkl and "vendor_id\t: GenuineIntel" in cpuinfo)


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` whose fp32 CPU inference goes through oneDNN; anything else takes the stock path.

    Modules become this class in place (their parameters and state dict are untouched), so a
    model's loading, saving and hooks see the same module.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled():
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)


def use_onednn_linear(model: nn.Module) -> int:
    """Turn every plain ``nn.Linear`` of ``model`` into a OneDNNLinear; returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDNNLinear
            count += 1
    return count
