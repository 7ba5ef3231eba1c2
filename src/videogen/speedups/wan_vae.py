"""Fewer memory passes in the Wan VAE (AutoencoderKLWan): the same arithmetic, less copying.

Its decoder is bound by 3D convolutions at full resolution, which neither side can make cheaper
exactly; around them, diffusers' modules copy more than they need to:

- ``WanCausalConv3d`` zero-pads every input in all three dimensions with ``F.pad`` (a filled copy
  of the whole activation, 6 frames at full size) before convolving. Here, for fp32 on the CPU,
  only the causal time padding is a copy; the spatial zeros are oneDNN's convolution ``padding``,
  applied without materialising them.
- ``WanRMS_norm`` makes four full-size tensors (normalised, times scale, times gamma, plus a bias of
  0.0). Here the norm divides once and multiplies in place by ``scale * gamma``.
- The residual blocks' SiLU after each norm runs in place on the norm's fresh output.

Frames differ from the stock modules' only by float rounding (BENCHMARKS.md has the effect).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanResidualBlock, WanRMS_norm
from torch import nn


class LeanCausalConv3d(WanCausalConv3d):
    """``WanCausalConv3d`` whose spatial zero padding is done by the convolution itself."""

    def forward(self, x: torch.Tensor, cache_x: torch.Tensor | None = None) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32 or x.requires_grad or self.weight.requires_grad:
            return super().forward(x, cache_x)
        width_pad, _, height_pad, _, time_pad, _ = self._padding
        if cache_x is not None and time_pad > 0:
            x = torch.cat([cache_x.to(x.device), x], dim=2)
            time_pad -= cache_x.shape[2]
        if time_pad > 0:
            x = F.pad(x, (0, 0, 0, 0, time_pad, 0))
        # oneDNN directly: PyTorch's dispatcher sends small unpadded inputs to its slow conv3d
        return torch.ops.aten.mkldnn_convolution(
            x, self.weight, self.bias, [0, height_pad, width_pad], self.stride, self.dilation, self.groups
        )


class LeanRMSNorm(WanRMS_norm):
    """``WanRMS_norm`` with one division and one in-place multiply (fp32; other dtypes: the stock path)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.requires_grad:
            return super().forward(x)
        dim = 1 if self.channel_first else -1
        normalised = x / torch.linalg.vector_norm(x, dim=dim, keepdim=True).clamp_min(1e-12)
        normalised.mul_(self.gamma * self.scale)
        if isinstance(self.bias, torch.Tensor):
            normalised.add_(self.bias)
        return normalised


def use_lean_wan_vae(vae: nn.Module) -> int:
    """Turn the Wan VAE's causal convolutions and RMS norms into their lean forms in place (their
    parameters and state dict are untouched); returns how many modules changed (none without oneDNN)."""
    if not torch.backends.mkldnn.is_available():
        return 0
    count = 0
    for module in vae.modules():
        if type(module) is WanCausalConv3d:
            module.__class__ = LeanCausalConv3d
            count += 1
        elif type(module) is WanRMS_norm:
            module.__class__ = LeanRMSNorm
            count += 1
        elif type(module) is WanResidualBlock and isinstance(module.nonlinearity, nn.SiLU):
            module.nonlinearity.inplace = True  # it only ever sees a norm's fresh output
            count += 1
    return count
