"""Video VAEs on the CPU (Wan's AutoencoderKLWan, LTX-Video's AutoencoderKLLTXVideo): the same
arithmetic, less copying and no slow path.

Their decoders are bound by 3D convolutions at full resolution, which neither side can make cheaper
exactly. PyTorch sends a 3D convolution whose input is small (batch x channels x frames x height at
most 20480) to its slow reference kernel instead of oneDNN; here every fp32 CPU 3D convolution of
these VAEs calls oneDNN directly. Around the convolutions, Wan's modules copy more than they need to:

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
from diffusers import AutoencoderKLLTXVideo
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanResidualBlock, WanRMS_norm
from torch import nn


def _lean(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the lean path applies: fp32 on the CPU, no gradient."""
    return (
        x.device.type == "cpu" and x.dtype == torch.float32 and not (x.requires_grad or weight.requires_grad)
    )


def onednn_conv3d(x: torch.Tensor, conv: nn.Conv3d, padding: tuple[int, int, int]) -> torch.Tensor:
    """``conv`` on ``x`` with zero ``padding``, through oneDNN whatever the input's size."""
    return torch.ops.aten.mkldnn_convolution(
        x, conv.weight, conv.bias, list(padding), conv.stride, conv.dilation, conv.groups
    )


class OneDNNConv3d(nn.Conv3d):
    """``nn.Conv3d`` (zero padding) whose fp32 CPU inference always runs in oneDNN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _lean(x, self.weight) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(x)
        return onednn_conv3d(x, self, self.padding)


class LeanCausalConv3d(WanCausalConv3d):
    """``WanCausalConv3d`` whose spatial zero padding is done by the convolution itself."""

    def forward(self, x: torch.Tensor, cache_x: torch.Tensor | None = None) -> torch.Tensor:
        if not _lean(x, self.weight):
            return super().forward(x, cache_x)
        width_pad, _, height_pad, _, time_pad, _ = self._padding
        if cache_x is not None and time_pad > 0:
            x = torch.cat([cache_x.to(x.device), x], dim=2)
            time_pad -= cache_x.shape[2]
        if time_pad > 0:
            x = F.pad(x, (0, 0, 0, 0, time_pad, 0))
        return onednn_conv3d(x, self, (0, height_pad, width_pad))


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


def use_lean_video_vae(vae: nn.Module) -> int:
    """Turn a Wan VAE's causal convolutions, RMS norms and SiLUs, or an LTX-Video VAE's 3D convolutions,
    into their lean forms in place (parameters and state dict untouched); returns how many modules
    changed (none for other models, or without oneDNN)."""
    if not torch.backends.mkldnn.is_available():
        return 0
    ltx = isinstance(vae, AutoencoderKLLTXVideo)
    count = 0
    for module in vae.modules():
        if type(module) is WanCausalConv3d:
            module.__class__ = LeanCausalConv3d
        elif type(module) is WanRMS_norm:
            module.__class__ = LeanRMSNorm
        elif type(module) is WanResidualBlock and isinstance(module.nonlinearity, nn.SiLU):
            module.nonlinearity.inplace = True  # it only ever sees a norm's fresh output
        elif ltx and type(module) is nn.Conv3d:
            module.__class__ = OneDNNConv3d
        else:
            continue
        count += 1
    return count
