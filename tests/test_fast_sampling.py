"""Fast sampling: DeepCache feature reuse, the guidance cut-off and the presets cost exactly the
UNet evaluations documented for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from videogen.catalog import CATALOG
from videogen.engines import load_engine
from videogen.families.base import Inputs
from videogen.request import Request, resolve_request
from videogen.sampling.deepcache import DeepCache
from videogen.sampling.guidance import guided_steps
from videogen.sampling.presets import PRESETS, unet_evaluations
from videogen.sampling.progress import Reporter
from videogen.testing import build_tiny_model

SHAPE = {"num_frames": 4, "height": 64, "width": 64}


def test_the_evaluation_formula() -> None:
    assert unet_evaluations(50, guided=True) == {"full": 100, "shallow": 0, "total": 100}
    assert unet_evaluations(20, guided=True, guidance_end=0.5, cache_interval=3) == {
        "full": 11,  # steps 0, 3, 6, 9 guided (2 each), 12, 15, 18 not (1 each)
        "shallow": 19,
        "total": 30,
    }
    assert unet_evaluations(7, guided=False, cache_interval=2) == {"full": 4, "shallow": 3, "total": 7}
    assert [guided_steps(10, end) for end in (0, 0.05, 0.5, 0.55, 1)] == [0, 1, 5, 6, 10]


UNET_MODELS = [model for model, spec in CATALOG.items() if spec.family in ("unet3d", "svd")]
WAN_MODELS = [model for model, spec in CATALOG.items() if spec.family == "wan"]
LTX_MODELS = [model for model, spec in CATALOG.items() if spec.family == "ltx"]


@pytest.mark.parametrize("model", LTX_MODELS)
def test_ltx_presets_cache_and_keep_the_models_schedule(model: str) -> None:
    spec = CATALOG[model]
    for preset, threshold in (("balanced", 0.05), ("fast", 0.1)):
        chosen = resolve_request(Request(model=model, preset=preset, prompt="a fox"))[0]
        assert chosen.cache_threshold == threshold
        assert (chosen.steps, chosen.timesteps) == (spec.defaults.steps, _listed(spec.defaults.timesteps))


def _listed(timesteps: tuple[float, ...] | None) -> list[float] | None:
    return None if timesteps is None else list(timesteps)


@pytest.mark.parametrize("model", UNET_MODELS)
def test_fast_preset_costs_at_most_40_percent_of_the_reference_evaluations(model: str) -> None:
    spec = CATALOG[model]
    reference = unet_evaluations(spec.defaults.steps, guided=True)["total"]
    fields = {"image": "in.png"} if spec.family == "svd" else {"prompt": "a fox"}
    fast = resolve_request(Request(model=model, preset="fast", **fields))[0]
    cost = unet_evaluations(fast.steps, True, fast.guidance_end, fast.cache_interval)["total"]
    assert cost <= 0.4 * reference, (model, cost, reference)


@pytest.mark.parametrize("model", WAN_MODELS)
def test_wans_fast_preset_halves_the_transformer_calls_before_its_cache_skips_any(model: str) -> None:
    """What First Block Cache skips depends on the latents, so it cannot be counted before a run;
    the steps alone must already halve the calls (two per guided step), and the cache is on."""
    spec = CATALOG[model]
    fields = {"image": "in.png"} if "t2v" not in spec.tasks else {}
    fields |= {"last_image": "out.png"} if spec.kind == "wan_flf2v" else {}
    fast = resolve_request(Request(model=model, preset="fast", prompt="a fox", **fields))[0]
    assert 2 * fast.steps <= 0.5 * 2 * spec.defaults.steps, (model, fast.steps)
    assert fast.cache_threshold > 0


def test_explicit_fields_override_the_preset() -> None:
    fast = resolve_request(Request(prompt="a fox", preset="fast"))[0]
    assert (fast.scheduler, fast.steps, fast.cache_interval, fast.guidance_end) == ("dpm++", 20, 3, 0.5)
    mine = resolve_request(Request(prompt="a fox", preset="fast", steps=30, guidance_end=1.0))[0]
    assert (mine.steps, mine.cache_interval, mine.guidance_end) == (30, 3, 1.0)
    quality = resolve_request(Request(prompt="a fox", preset="quality"))[0]
    assert (quality.steps, quality.cache_interval, quality.guidance_end) == (50, 1, 1.0)
    assert set(PRESETS) == {"quality", "balanced", "fast"}


class CallLog:
    """Records the batch of every UNet call and how often the deep and the shallow blocks ran."""

    def __init__(self, unet: torch.nn.Module) -> None:
        self.batches: list[int] = []
        self.deep = self.shallow = 0
        self.handles = [
            unet.register_forward_pre_hook(lambda m, args: self.batches.append(len(args[0]))),
            # a layer inside the mid block: the block itself is still called (and hooked) when stubbed
            unet.mid_block.resnets[0].register_forward_pre_hook(
                lambda m, args: setattr(self, "deep", self.deep + 1)
            ),
            unet.up_blocks[-1].register_forward_pre_hook(
                lambda m, args: setattr(self, "shallow", self.shallow + 1)
            ),
        ]

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


@pytest.fixture(scope="module")
def engines(tiny_unet3d: Path, tiny_svd: Path, tmp_path_factory) -> dict:
    sv3d_p = build_tiny_model("sv3d-p", tmp_path_factory.mktemp("models") / "tiny-sv3d-p")
    load = lambda family, folder: load_engine(family, folder, torch.device("cpu"), torch.float32, None)  # noqa: E731
    return {
        "unet3d": (load("unet3d", tiny_unet3d), tiny_unet3d),
        "svd": (load("svd", tiny_svd), tiny_svd),
        "sv3d-p": (load("svd", sv3d_p), sv3d_p),
    }


def _run(engines: dict, kind: str, **fields):
    engine, folder = engines[kind]
    if kind == "unet3d":
        request = Request(prompt="a red fox", model=str(folder), guidance=7.0, **SHAPE, **fields)
        inputs = Inputs()
    else:
        shape = SHAPE if kind == "svd" else {**SHAPE, "num_frames": 5}
        request = Request(image="in.png", model=str(folder), **shape, **fields)
        inputs = Inputs(image=Image.fromarray(np.full((64, 64, 3), (30, 160, 90), np.uint8)))
    request = resolve_request(request)[0]
    calls = CallLog(engine.unet)
    try:
        (video,) = engine.generate(request, [5], Reporter(None, None, 1), inputs)
    finally:
        calls.close()
    return video, calls


@pytest.mark.parametrize("kind", ["unet3d", "svd", "sv3d-p"])
def test_cache_and_guidance_cut_off_cost_what_is_documented(engines, kind) -> None:
    video, calls = _run(engines, kind, steps=7, cache_interval=3, guidance_end=0.5)
    expected = unet_evaluations(7, guided=True, guidance_end=0.5, cache_interval=3)
    assert calls.batches == [2, 2, 2, 2, 1, 1, 1]  # guided for ceil(0.5 * 7) = 4 steps
    assert calls.deep == 3 and calls.shallow == 7  # the deep blocks ran at steps 0, 3 and 6 only
    assert video.record["unet_evaluations"] == expected["full"] == 5
    assert video.record["unet_shallow_evaluations"] == expected["shallow"] == 6
    assert video.record["guided_steps"] == 4
    assert np.isfinite(video.frames).all() and video.frames.std() > 0.01


@pytest.mark.parametrize("kind", ["unet3d", "svd"])
def test_fast_sampling_changes_the_result_but_plain_settings_do_not(engines, kind) -> None:
    plain, _ = _run(engines, kind, steps=4)
    explicit, _ = _run(engines, kind, steps=4, cache_interval=1, guidance_end=1.0)
    cached, _ = _run(engines, kind, steps=4, cache_interval=2)
    np.testing.assert_array_equal(plain.frames, explicit.frames)
    assert np.abs(cached.frames - plain.frames).max() > 1e-4


@pytest.mark.parametrize("kind", ["unet3d", "svd"])
def test_a_shallow_step_on_the_cached_input_reproduces_the_full_unet(engines, kind) -> None:
    """The stubs hand the deep blocks' own outputs back, so on the same input the shallow path is exact."""
    engine, _ = engines[kind]
    torch.manual_seed(0)
    if kind == "unet3d":
        sample = torch.randn(2, 4, 3, 8, 8)
        context = torch.randn(2, 77, engine.unet.config.cross_attention_dim)
        call = lambda: engine.unet(sample, torch.tensor(500), encoder_hidden_states=context).sample  # noqa: E731
    else:
        sample = torch.randn(2, 3, 8, 8, 8)
        context = torch.randn(2, 1, engine.unet.config.cross_attention_dim)
        added = torch.tensor([[6.0, 127.0, 0.02]] * 2)
        call = lambda: engine.unet(sample, torch.tensor(1.5), context, added_time_ids=added).sample  # noqa: E731
    cache = DeepCache(engine.unet, interval=2)
    with torch.inference_mode():
        with cache.step(0, batch=2):
            full = call()
        with cache.step(1, batch=2):
            shallow = call()
        with cache.step(3, batch=1):  # guidance over: the conditional half of the cache
            single = engine.unet(*_halves(kind, sample, context)).sample
    torch.testing.assert_close(shallow, full, rtol=0, atol=0)
    torch.testing.assert_close(single, full[1:], rtol=1e-5, atol=1e-5)
    assert (cache.full_evaluations, cache.shallow_evaluations) == (2, 3)


def _halves(kind: str, sample: torch.Tensor, context: torch.Tensor) -> tuple:
    if kind == "unet3d":
        return sample[1:], torch.tensor(500), context[1:]
    return sample[1:], torch.tensor(1.5), context[1:], torch.tensor([[6.0, 127.0, 0.02]])
