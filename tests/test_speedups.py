"""Exact speed-ups and memory measures: each leaves the output equal to the plain path."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers.models.activations import GEGLU, GELU
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from videogen import HUGE_PAGES_VARIABLE
from videogen.engines import load_engine
from videogen.errors import FieldError
from videogen.families.base import Inputs
from videogen.generate import generate
from videogen.memory import resident_mb
from videogen.request import Request, resolve_request
from videogen.sampling.progress import Reporter
from videogen.speedups import Speedups
from videogen.speedups.fused_activation import use_fused_activations
from videogen.speedups.onednn_linear import (
    OneDNNLinear,
    onednn_by_default,
    onednn_linear_available,
    prefers_onednn,
)
from videogen.speedups.weight_pages import file_mappings, release_pages_after_forward

PLAIN = Speedups(onednn_linear=False, fused_activation=False, release_weights=False, fused_qkv=False)
VARIANTS = {
    "default": Speedups(),
    "onednn_linear": replace(PLAIN, onednn_linear=True),
    "fused_qkv": replace(PLAIN, fused_qkv=True),
    "fused_activation": replace(PLAIN, fused_activation=True),
    "channels_last": replace(PLAIN, channels_last=True),
    "math_attention": replace(PLAIN, attention="math"),
    "no_grad": replace(PLAIN, inference_mode=False),
    "sequential_offload": replace(PLAIN, offload="sequential"),
    "model_offload": replace(PLAIN, offload="model"),
}
SHAPE = {"num_frames": 4, "height": 64, "width": 64, "steps": 3}


def _frames(folder: Path, family: str, speedups: Speedups) -> tuple[np.ndarray, dict]:
    engine = load_engine(family, folder, torch.device("cpu"), torch.float32, None, speedups)
    if family == "unet3d":
        request = resolve_request(Request(prompt="a red fox", model=str(folder), guidance=7.0, **SHAPE))[0]
        inputs = Inputs()
    else:
        request = resolve_request(Request(image="still.png", model=str(folder), **SHAPE))[0]
        inputs = Inputs(image=Image.fromarray(np.full((64, 64, 3), (200, 80, 40), np.uint8)))
    (video,) = engine.generate(request, [3], Reporter(None, None, 1), inputs)
    return video.frames, engine.applied


@pytest.fixture(scope="module")
def plain(tiny_unet3d: Path, tiny_svd: Path) -> dict[str, np.ndarray]:
    return {"unet3d": _frames(tiny_unet3d, "unet3d", PLAIN)[0], "svd": _frames(tiny_svd, "svd", PLAIN)[0]}


@pytest.mark.parametrize("family", ["unet3d", "svd"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_speedup_leaves_the_output_equal(plain, tiny_unet3d, tiny_svd, family, name) -> None:
    folder = tiny_unet3d if family == "unet3d" else tiny_svd
    frames, applied = _frames(folder, family, VARIANTS[name])
    assert np.abs(frames - plain[family]).max() < 1e-4  # float rounding (summation order) only
    if name == "onednn_linear" and onednn_linear_available():
        assert applied["onednn_linear_layers"] > 10
    if name == "default" and onednn_linear_available():
        assert ("onednn_linear_layers" in applied) == onednn_by_default()
        assert applied["released_weight_mb"] > 0 and applied["fused_activations"] > 0
    if name == "fused_qkv" and family == "unet3d":
        assert applied["fused_qkv"] is True


def test_linear_layers_stay_on_mkl_on_intel_cpus_only() -> None:
    intel = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
    amd = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
    assert not prefers_onednn(intel, mkl=True)
    assert prefers_onednn(intel, mkl=False)  # a build without MKL has no fast stock path to keep
    assert prefers_onednn(amd, mkl=True)
    assert prefers_onednn("", mkl=True)
    on_this_machine = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    assert Speedups().onednn_linear == prefers_onednn(on_this_machine, torch.backends.mkl.is_available())


def test_onednn_linear_matches_torch_and_keeps_the_state_dict() -> None:
    if not onednn_linear_available():
        pytest.skip("this PyTorch build has no oneDNN")
    torch.manual_seed(0)
    layer = nn.Linear(96, 80)
    x = torch.randn(2, 50, 96)
    with torch.inference_mode():
        expected = layer(x)
        keys = set(layer.state_dict())
        layer.__class__ = OneDNNLinear
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    assert set(layer.state_dict()) == keys
    assert layer(x).requires_grad, "with autograd on, the stock path runs"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    "make",
    [
        lambda: GEGLU(48, 80),
        lambda: GEGLU(48, 80, bias=False),
        lambda: GELU(48, 80),
        lambda: GELU(48, 80, "tanh"),
    ],
    ids=["geglu", "geglu-no-bias", "gelu", "gelu-tanh"],
)
def test_fused_activations_match_diffusers_and_keep_the_state_dict(make) -> None:
    if not onednn_linear_available():
        pytest.skip("this PyTorch build has no oneDNN")
    torch.manual_seed(0)
    stock, x = make(), torch.randn(2, 37, 48)
    fused = make()
    fused.load_state_dict(stock.state_dict())
    assert use_fused_activations(fused) == 1 and type(fused).__name__.startswith("Fused")
    with torch.inference_mode():
        expected, got = stock(x), fused(x)
    assert got.shape == expected.shape and (got - expected).abs().max() < 1e-5
    assert fused.state_dict().keys() == stock.state_dict().keys()
    with torch.enable_grad():  # training takes the stock path, so gradients flow
        fused(x.requires_grad_()).sum().backward()
    assert x.grad is not None


def test_a_wrapped_projection_takes_the_stock_path() -> None:
    """A LoRA (or any wrapper) on the projection is not bypassed by the fused product."""

    class Doubled(nn.Module):
        def __init__(self, inner: nn.Linear) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * self.inner(x)

    module, x = GEGLU(16, 24), torch.randn(3, 16)
    use_fused_activations(module)
    with torch.inference_mode():
        plain = module(x)
        module.proj = Doubled(module.proj)
        value, gate = (2 * module.proj.inner(x)).chunk(2, dim=-1)
        assert torch.allclose(module(x), value * F.gelu(gate)) and not torch.allclose(module(x), plain)


def test_released_weight_pages_leave_the_resident_set_and_come_back_intact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Linear(1024, 1024) for _ in range(24)))  # 96 MB of weights
    save_file(model.state_dict(), str(tmp_path / "weights.safetensors"))
    expected = None
    x = torch.randn(4, 1024)
    with torch.inference_mode():
        expected = model(x)
    mapped = nn.Sequential(*(nn.Linear(1024, 1024, device="meta") for _ in range(24)))
    mapped.load_state_dict(load_file(str(tmp_path / "weights.safetensors")), assign=True)
    assert file_mappings(), "safetensors should map the file"
    covered = release_pages_after_forward(mapped, max_unit_bytes=8 * 2**20)
    assert covered > 90 * 2**20
    before = resident_mb()
    with torch.inference_mode():
        first = mapped(x)
        grown = resident_mb() - before
        second = mapped(x)  # the pages come back from the page cache
    assert grown < 30, f"the forward left {grown:.0f} MB resident"
    torch.testing.assert_close(first, expected, rtol=0, atol=0)
    torch.testing.assert_close(second, expected, rtol=0, atol=0)


def test_anonymous_weights_are_never_released() -> None:
    model = nn.Sequential(nn.Linear(512, 512), nn.Linear(512, 512))  # built in memory, not mapped
    assert release_pages_after_forward(model) == 0


def test_offload_needs_cuda(tiny_unet3d: Path, tmp_path: Path) -> None:
    request = Request(
        prompt="a fox", model=str(tiny_unet3d), offload="model", out_dir=str(tmp_path), device="cpu"
    )
    with pytest.raises(FieldError, match="offload: 'model' is not allowed; offloading needs a CUDA device"):
        generate(request)


HUGE_PAGE_PROBE = """
import sys
if sys.argv[1] == "torch-first":
    import torch
import videogen, torch
tensor = torch.ones(64 * 2**20 // 4)  # 64 MB, touched
rollup = open("/proc/self/smaps_rollup").read()
huge_kb = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("AnonHugePages:"))
print(videogen.HUGE_PAGES, huge_kb >= 32 * 1024)
"""


def _transparent_huge_pages() -> str:
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return ""


@pytest.mark.skipif("[never]" in _transparent_huge_pages() or not _transparent_huge_pages(),
                    reason="the kernel has no transparent huge pages")  # fmt: skip
@pytest.mark.parametrize(
    ("order", "variable", "expected"),
    [("videogen-first", None, "True True"), ("videogen-first", "0", "False False"),
     ("torch-first", None, "True True")],  # torch reads the variable at its first allocation, not on import
)  # fmt: skip
def test_importing_videogen_puts_large_tensors_on_huge_pages(
    order: str, variable: str | None, expected: str
) -> None:
    environment = {key: value for key, value in os.environ.items() if key != HUGE_PAGES_VARIABLE}
    if variable is not None:
        environment[HUGE_PAGES_VARIABLE] = variable
    done = subprocess.run([sys.executable, "-c", HUGE_PAGE_PROBE, order], env=environment,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert done.stdout.split() == expected.split()
