"""Wan speed: the presets' fields, and diffusers' First Block Cache on the engine's transformers.

The engine is kept between jobs, so the cache is set for every video: these tests run requests with
and without it, and at different thresholds, on one engine and compare them with fresh engines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from videogen.errors import FieldError
from videogen.families.base import GeneratedVideo
from videogen.families.wan import WanEngine
from videogen.request import Request, resolve_request
from videogen.sampling.progress import Reporter
from videogen.testing import build_tiny_model

SETTINGS = {
    "scheduler": "unipc",
    "guidance_2": None,
    "strength": None,
    "num_frames": 9,
    "height": 64,
    "width": 64,
    "steps": 10,
    "guidance": 5.0,
    "flow_shift": 3.0,
    "negative_prompt": "blurry",
    "save_latents": True,
}
#: at this threshold the tiny model's first block changes little enough for most calls to be skipped
THRESHOLD = 0.1


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wan-speed")
    return {name: build_tiny_model(name, root / name) for name in ("wan-t2v", "wan-a14b")}


def _engine(folder: Path) -> WanEngine:
    return WanEngine.load(folder, torch.device("cpu"), torch.float32, None)


@pytest.fixture(scope="module")
def engine(folders) -> WanEngine:
    """One engine for the whole module, as the server keeps one between jobs."""
    return _engine(folders["wan-t2v"])


def _generate(engine: WanEngine, seeds: list[int] = [0], **fields) -> list[GeneratedVideo]:  # noqa: B006
    request = Request(prompt="a cat playing piano", model="x").model_copy(update={**SETTINGS, **fields})
    return engine.generate(request, seeds, Reporter(None, None, len(seeds)))


def _latents(video: GeneratedVideo) -> torch.Tensor:
    assert video.latents is not None
    return video.latents["latents"]


def test_wan_presets_set_fewer_steps_and_the_cache() -> None:
    def resolved(**fields) -> Request:
        return resolve_request(Request(model="wan2.1-t2v-1.3b", prompt="a fox", **fields))[0]

    assert (resolved().steps, resolved().cache_threshold) == (50, 0.0)
    assert (resolved(preset="quality").steps, resolved(preset="quality").cache_threshold) == (50, 0.0)
    assert (resolved(preset="balanced").steps, resolved(preset="balanced").cache_threshold) == (30, 0.05)
    assert (resolved(preset="fast").steps, resolved(preset="fast").cache_threshold) == (20, 0.1)
    mine = resolved(preset="fast", steps=25, cache_threshold=0.0)
    assert (mine.steps, mine.cache_threshold) == (25, 0.0), "explicit fields override the preset"
    two_experts = resolve_request(Request(model="wan2.2-t2v-a14b", prompt="a fox", preset="balanced"))[0]
    assert (two_experts.steps, two_experts.cache_threshold) == (30, 0.05)
    with pytest.raises(FieldError, match="cache_threshold"):
        resolve_request(Request(model="modelscope-t2v", prompt="a fox", cache_threshold=0.1))


def test_the_cache_skips_transformer_calls_and_stays_close(engine) -> None:
    (plain,) = _generate(engine)
    (cached,) = _generate(engine, cache_threshold=THRESHOLD)
    assert plain.record["transformer_evaluations"] == 20  # 10 guided steps, two calls each
    assert plain.record["transformer_skipped_evaluations"] == 0
    full, skipped = cached.record["transformer_evaluations"], cached.record["transformer_skipped_evaluations"]
    assert full + skipped == 20 and 2 <= full < 10, (full, skipped)
    assert cached.record["cache_threshold"] == THRESHOLD
    # A call is skipped only when the first block's output moved by at most THRESHOLD of its size since
    # the last full call; the reused residuals then err by about that share. Over the run the final
    # latents stay within THRESHOLD of their own spread (another seed differs by about twice the spread).
    spread = _latents(plain).std()
    assert (_latents(cached) - _latents(plain)).abs().max() <= THRESHOLD * spread
    assert not torch.equal(_latents(cached), _latents(plain)), "the cache changed nothing"


def test_each_video_starts_with_a_clean_cache(engine) -> None:
    first, second = _generate(engine, seeds=[0, 0], cache_threshold=THRESHOLD)
    assert torch.equal(_latents(first), _latents(second)), "the second video reused the first's features"
    assert first.record == second.record


def test_no_cache_after_a_cached_request_equals_a_fresh_run(engine, folders) -> None:
    _generate(engine, cache_threshold=THRESHOLD)
    (after,) = _generate(engine)
    assert not engine.transformer.is_cache_enabled, "the hooks stay on without a cache"
    fresh = _engine(folders["wan-t2v"])
    (reference,) = _generate(fresh)
    assert torch.equal(_latents(after), _latents(reference))
    assert after.record["transformer_skipped_evaluations"] == 0
    # a new threshold on the kept engine is the same as that threshold on a fresh one
    (coarser,) = _generate(engine, cache_threshold=0.3)
    (fresh_coarser,) = _generate(_engine(folders["wan-t2v"]), cache_threshold=0.3)
    assert torch.equal(_latents(coarser), _latents(fresh_coarser))
    (finer,) = _generate(engine, cache_threshold=THRESHOLD)
    assert coarser.record["transformer_evaluations"] <= finer.record["transformer_evaluations"]


def test_a_threshold_of_zero_is_no_cache(engine) -> None:
    (plain,) = _generate(engine)
    (zero,) = _generate(engine, cache_threshold=0.0)
    assert torch.equal(_latents(zero), _latents(plain)) and (zero.frames == plain.frames).all()
    assert zero.record["cache_threshold"] == 0.0 and zero.record["transformer_skipped_evaluations"] == 0
    assert not engine.transformer.is_cache_enabled


def test_both_experts_of_a14b_are_cached_and_counted(folders) -> None:
    engine = _engine(folders["wan-a14b"])
    (plain,) = _generate(engine)
    (cached,) = _generate(engine, cache_threshold=THRESHOLD)
    assert engine.transformer.is_cache_enabled and engine.transformer_2.is_cache_enabled
    assert cached.record["expert_steps"] == plain.record["expert_steps"]
    full, skipped = cached.record["transformer_evaluations"], cached.record["transformer_skipped_evaluations"]
    assert full + skipped == 20 and skipped > 0
    assert full >= 4, "each expert's first call (per branch) runs in full"
