"""The lean video VAE modules (speedups.video_vae) decode and encode what the stock modules do."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers import AutoencoderKLWan

from videogen.speedups.video_vae import LeanCausalConv3d, LeanRMSNorm, OneDNNConv3d, use_lean_video_vae
from videogen.testing._ltx import tiny_ltx095_vae, tiny_ltx_vae
from videogen.testing._wan import tiny_wan21_vae, tiny_wan22_vae

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")


def _random_vae(make: type[AutoencoderKLWan] | object) -> AutoencoderKLWan:
    torch.manual_seed(0)
    vae = make().eval().requires_grad_(False)
    for parameter in vae.parameters():  # gammas and biases away from 1 and 0, so every term counts
        parameter.add_(torch.randn_like(parameter) * 0.1)
    return vae


@pytest.mark.parametrize("make", [tiny_wan21_vae, tiny_wan22_vae], ids=["wan2.1", "wan2.2"])
def test_lean_modules_decode_and_encode_as_the_stock_ones(make) -> None:
    stock = _random_vae(make)
    lean = copy.deepcopy(stock)
    changed = use_lean_video_vae(lean)
    kinds = {type(module) for module in lean.modules()}
    assert changed > 0 and LeanCausalConv3d in kinds and LeanRMSNorm in kinds
    generator = torch.Generator().manual_seed(1)
    spatial = stock.config.scale_factor_spatial
    latents = torch.randn(1, stock.config.z_dim, 3, 48 // spatial, 80 // spatial, generator=generator)
    pixels = torch.rand(1, 3, 9, 48, 80, generator=generator) * 2 - 1
    with torch.inference_mode():
        decoded, decoded_lean = (vae.decode(latents, return_dict=False)[0] for vae in (stock, lean))
        encoded, encoded_lean = (vae.encode(pixels).latent_dist.mode() for vae in (stock, lean))
    assert decoded.shape == decoded_lean.shape == (1, 3, 9, 48, 80)
    assert decoded.std() > 0.01  # a real picture, not a constant
    assert torch.allclose(decoded_lean, decoded, atol=1e-5, rtol=0)
    assert torch.allclose(encoded_lean, encoded, atol=1e-5, rtol=0)
    # the lean modules leave their input alone: decoding twice gives the same frames
    with torch.inference_mode():
        assert torch.equal(lean.decode(latents, return_dict=False)[0], decoded_lean)


def test_lean_modules_take_the_stock_path_off_fp32() -> None:
    stock = _random_vae(tiny_wan21_vae).to(torch.bfloat16)
    lean = copy.deepcopy(stock)
    use_lean_video_vae(lean)
    latents = torch.randn(1, 16, 2, 6, 10, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    with torch.inference_mode():
        decoded, decoded_lean = (vae.decode(latents, return_dict=False)[0] for vae in (stock, lean))
    assert torch.equal(decoded_lean, decoded)


@pytest.mark.parametrize("make", [tiny_ltx_vae, tiny_ltx095_vae], ids=["ltx-0.9.0", "ltx-0.9.5"])
def test_ltx_convolutions_in_onednn_decode_as_the_stock_ones(make) -> None:
    stock = _random_vae(make)
    lean = copy.deepcopy(stock)
    assert use_lean_video_vae(lean) > 0 and OneDNNConv3d in {type(module) for module in lean.modules()}
    generator = torch.Generator().manual_seed(3)
    latents = torch.randn(1, stock.config.latent_channels, 2, 2, 3, generator=generator)
    kwargs = {"temb": torch.tensor([0.05])} if stock.config.timestep_conditioning else {}
    with torch.inference_mode():
        decoded, decoded_lean = (vae.decode(latents, return_dict=False, **kwargs)[0] for vae in (stock, lean))
    assert decoded.shape[2:] == (9, 64, 96) and decoded.std() > 0.01
    # float rounding only: a different summation order, relative to the frames' scale (up to ~9 here)
    assert (decoded_lean - decoded).abs().max() <= 1e-5 * decoded.abs().max()


def test_other_models_are_left_alone() -> None:
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 3, 3), torch.nn.SiLU())
    assert use_lean_video_vae(model) == 0
    assert type(model[0]) is torch.nn.Conv3d and not model[1].inplace
