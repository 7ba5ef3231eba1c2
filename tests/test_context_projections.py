"""A video's text projections computed once (``speedups.context_projections``): same output, less work.

The unit tests count what a module really computes; the engine tests count the computations of one
cross-attention's key projection and the caption projection over a guided generation on tiny Wan and
LTX-Video models, and compare the frames bit for bit with an engine that computes them at every call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_ltx_engine import ltx_request
from torch import nn

from videogen.families.base import GeneratedVideo, Inputs
from videogen.families.ltx import LTXEngine
from videogen.families.wan import WanEngine
from videogen.request import Request
from videogen.sampling.progress import Reporter
from videogen.speedups import Speedups
from videogen.speedups.context_projections import CAPACITY, remembered
from videogen.testing import build_tiny_model

STEPS = 3


def counted(module: nn.Module) -> list[int]:
    """Make ``module`` count the calls of its class's forward (what it really computes)."""
    calls = [0]
    inner = type(module).forward

    def forward(self: nn.Module, *args: object, **kwargs: object) -> object:
        calls[0] += 1
        return inner(self, *args, **kwargs)

    module.__class__ = type(f"Counted{type(module).__name__}", (type(module),), {"forward": forward})
    return calls


def test_an_equal_input_is_computed_once_and_a_changed_one_again() -> None:
    linear = nn.Linear(8, 4)
    calls = counted(linear)
    x = torch.randn(3, 8)
    with remembered([linear]):
        first = linear(x)
        again = linear(x.clone())  # another tensor with the same values
        other = linear(x + 1)
    assert calls[0] == 2
    assert again is first
    torch.testing.assert_close(other, nn.functional.linear(x + 1, linear.weight, linear.bias), rtol=0, atol=0)


def test_an_input_written_in_place_is_not_mistaken_for_the_one_seen() -> None:
    linear = nn.Linear(8, 4)
    calls = counted(linear)
    x = torch.randn(3, 8)
    with remembered([linear]):
        linear(x)
        x.mul_(2)
        out = linear(x)
    assert calls[0] == 2
    torch.testing.assert_close(out, nn.functional.linear(x, linear.weight, linear.bias), rtol=0, atol=0)


def test_the_module_is_itself_again_after_the_block_and_forgets() -> None:
    linear = nn.Linear(8, 4)
    calls = counted(linear)
    x = torch.randn(3, 8)
    with remembered([linear, linear]):  # named twice: wrapped once
        linear(x)
        linear(x)
    assert "forward" not in linear.__dict__
    linear(x)
    assert calls[0] == 2


def test_inputs_beyond_the_capacity_are_computed_every_time() -> None:
    linear = nn.Linear(8, 4)
    calls = counted(linear)
    inputs = [torch.full((2, 8), float(i)) for i in range(CAPACITY + 1)]
    with remembered([linear]):
        for _ in range(2):
            for x in inputs:
                linear(x)
    assert calls[0] == CAPACITY + 2  # each remembered input once, the one past the capacity twice


WAN_SETTINGS = {
    "scheduler": "unipc",
    "guidance_2": None,
    "strength": None,
    "num_frames": 5,
    "height": 32,
    "width": 32,
    "steps": STEPS,
    "guidance": 5.0,
    "flow_shift": 3.0,
    "negative_prompt": "blurry",
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("context-models")
    return {name: build_tiny_model(name, root / name) for name in ("wan-t2v", "wan-i2v", "ltx")}


def _generate(engine: WanEngine | LTXEngine, request: Request, inputs: Inputs | None) -> GeneratedVideo:
    return engine.generate(request, [0], Reporter(None, None, 1), inputs)[0]


def _wan_counts(engine: WanEngine) -> dict[str, list[int]]:
    model = engine.transformer
    counts = {"to_k": counted(model.blocks[0].attn2.to_k)}
    counts["text"] = counted(model.condition_embedder.text_embedder)
    if model.blocks[0].attn2.add_k_proj is not None:
        counts["image to_k"] = counted(model.blocks[0].attn2.add_k_proj)
    return counts


@pytest.mark.parametrize(
    ("model", "computed"),
    [
        # a guided step calls the transformer twice, with the prompt and with the negative prompt
        ("wan-t2v", {"to_k": 2, "text": 2}),
        # the image tokens are concatenated to the text anew at every call: equal, not the same tensor;
        # cond and uncond calls read the same image, so its keys are computed once
        ("wan-i2v", {"to_k": 2, "text": 2, "image to_k": 1}),
    ],
)
def test_wan_computes_each_prompts_projections_once_with_the_same_frames(folders, model, computed) -> None:
    inputs = Inputs(image=Image.new("RGB", (32, 32), (200, 40, 40))) if model == "wan-i2v" else None
    videos, counts = {}, {}
    for cache in (True, False):
        speedups = Speedups(context_cache=cache)
        engine = WanEngine.load(folders[model], torch.device("cpu"), torch.float32, None, speedups)
        counts[cache] = _wan_counts(engine)
        request = Request(prompt="a cat playing piano", model="x").model_copy(update=WAN_SETTINGS)
        videos[cache] = _generate(engine, request, inputs)
    assert {name: calls[0] for name, calls in counts[True].items()} == computed
    assert {name: calls[0] for name, calls in counts[False].items()} == dict.fromkeys(computed, 2 * STEPS)
    assert np.array_equal(videos[True].frames, videos[False].frames)
    assert videos[True].record["speedups"]["context_cache"] is True
    assert "context_cache" not in videos[False].record["speedups"]


def test_ltx_computes_the_batched_prompts_projections_once_with_the_same_frames(folders) -> None:
    videos, counts = {}, {}
    for cache in (True, False):
        speedups = Speedups(context_cache=cache)
        engine = LTXEngine.load(folders["ltx"], torch.device("cpu"), torch.float32, None, speedups)
        counts[cache] = [counted(engine.transformer.transformer_blocks[0].attn2.to_v)]
        counts[cache].append(counted(engine.transformer.caption_projection))
        videos[cache] = _generate(engine, ltx_request(folders["ltx"], steps=STEPS), None)
    # one guided call per step, on the negative and the positive prompt as a batch of two
    assert [calls[0] for calls in counts[True]] == [1, 1]
    assert [calls[0] for calls in counts[False]] == [STEPS, STEPS]
    assert np.array_equal(videos[True].frames, videos[False].frames)


def test_only_cpu_engines_without_offload_remember() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert Speedups().remembers_text(cpu)
    assert not Speedups().remembers_text(cuda)
    assert not Speedups(offload="model").remembers_text(cpu)
    assert not Speedups(context_cache=False).remembers_text(cpu)
