"""Feed-forward activations fused into their linear layer through oneDNN on the CPU.

diffusers' ``GEGLU`` runs its projection, then splits the result, applies GELU to the gate half and
multiplies, each step a pass over a new tensor as large as the activations (at ModelScope's default
size, 335 MB for one feed-forward's projection). oneDNN does the GELU and the multiplication as
post-operations of the matrix product, while each output tile is still in cache: the gate half is one
linear layer with GELU, the value half one linear layer multiplied by it. ``GELU`` (Wan's and LTX's
feed-forwards) becomes one linear layer with GELU. The weights are row slices of the same parameter
(no copy), so their pages are released as before. The output differs from the stock path by float
rounding only.
"""

from __future__ import annotations

import torch
from diffusers.models.activations import GEGLU, GELU
from torch import nn

from videogen.speedups.onednn_linear import OneDNNLinear


def _fusable(module: GEGLU | GELU, x: torch.Tensor) -> bool:
    """fp32 CPU inference on a plain fp32 projection (a LoRA-wrapped or fp8 one takes the stock path)."""
    return (
        type(module.proj) in (nn.Linear, OneDNNLinear)
        and module.proj.weight.dtype == torch.float32
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_grad_enabled()
    )


class FusedGEGLU(GEGLU):
    """``GEGLU`` as two oneDNN products: GELU fused into the gate's, the multiplication into the value's."""

    def forward(self, hidden_states: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if not _fusable(self, hidden_states):
            return super().forward(hidden_states, *args, **kwargs)
        weight, bias = self.proj.weight, self.proj.bias
        half = weight.shape[0] // 2
        value_bias, gate_bias = (None, None) if bias is None else (bias[:half], bias[half:])
        linear = torch.ops.mkldnn._linear_pointwise
        gate = linear(hidden_states, weight[half:], gate_bias, "gelu", [], "none")
        return linear.binary(hidden_states, gate, weight[:half], value_bias, "mul")


class FusedGELU(GELU):
    """``GELU`` as one oneDNN product with the GELU (exact or tanh) as its post-operation."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if not _fusable(self, hidden_states):
            return super().forward(hidden_states)
        linear = torch.ops.mkldnn._linear_pointwise
        return linear(hidden_states, self.proj.weight, self.proj.bias, "gelu", [], self.approximate)


def use_fused_activations(model: nn.Module) -> int:
    """Turn every ``GEGLU`` and ``GELU`` of ``model`` into its fused class in place; returns how many."""
    fused = {GEGLU: FusedGEGLU, GELU: FusedGELU}
    count = 0
    for module in model.modules():
        if type(module) in fused:
            module.__class__ = fused[type(module)]
            count += 1
    return count
