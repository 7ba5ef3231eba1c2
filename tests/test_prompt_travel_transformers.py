"""Prompt travel on the diffusion transformers (Wan, LTX-Video): the first latent frames of a chained
segment read a text of their own, blended from the previous segment's prompt.

The mechanism is checked on one cross-attention module against each frame attending to its own text
by a plain call; the engines' travel is checked to be what the blend says and to move the first
frames' prediction toward the previous prompt; chains on tiny weights check that a segment whose
prompt changes hands its engine the previous prompt, by video and by image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from videogen.families.base import Inputs
from videogen.families.ltx import LTXEngine
from videogen.families.wan import WanEngine
from videogen.generate import generate
from videogen.request import Request, parse_request
from videogen.resolve import resolve
from videogen.sampling.frame_cross_attention import FrameText, frame_text
from videogen.sampling.prompt_travel import latent_frame_weights
from videogen.testing import build_tiny_model

PROMPT, PREVIOUS = "a cat playing piano in a jazz club", "a red car driving on a mountain road"


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("travel-models")
    names = ("wan-t2v", "wan-i2v", "wan-ti2v", "wan-a14b", "ltx")
    return {name: build_tiny_model(name, root / name) for name in names}


@pytest.fixture(scope="module")
def wan(folders) -> dict[str, WanEngine]:
    cpu = torch.device("cpu")
    return {
        name: WanEngine.load(folders[name], cpu, torch.float32, None)
        for name in ("wan-t2v", "wan-i2v", "wan-a14b")
    }


@pytest.fixture(scope="module")
def ltx(folders) -> LTXEngine:
    return LTXEngine.load(folders["ltx"], torch.device("cpu"), torch.float32, None)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def closer(travelled: torch.Tensor, to: torch.Tensor, than: torch.Tensor) -> bool:
    return bool((travelled - to).abs().mean() < (travelled - than).abs().mean())


def test_latent_frames_take_the_mean_weight_of_the_pixel_frames_they_stand_for() -> None:
    # 4 shared frames ramp 0, 1/3, 2/3, 1; a latent frame after the first covers `temporal` frames
    np.testing.assert_allclose(latent_frame_weights(9, 4, 4), [0, 0.75, 1])
    np.testing.assert_allclose(latent_frame_weights(17, 4, 8), [0, 0.875, 1])
    np.testing.assert_allclose(latent_frame_weights(9, 1, 4), [0, 1, 1])


def test_each_travelled_frame_attends_its_own_text_and_the_rest_the_given_one(wan) -> None:
    """Wan 2.1 I2V's cross-attention: image tokens first, then 512 text tokens; two of three frames travel."""
    attention = wan["wan-i2v"].transformer.blocks[0].attn2
    width, per_frame, image_tokens = attention.to_q.in_features, 4, 6
    hidden = randn(1, 3 * per_frame, width)
    context = randn(1, image_tokens + 512, width, seed=1)
    text = FrameText(randn(2, 512, width, seed=2), None, per_frame)
    with torch.no_grad():
        plain = attention(hidden, context)
        with frame_text([attention], text):
            travelled = attention(hidden, context)
        after = attention(hidden, context)
        for frame in range(2):
            own = torch.cat([context[:, :image_tokens], text.context[frame : frame + 1]], dim=1)
            tokens = slice(frame * per_frame, (frame + 1) * per_frame)
            expected = attention(hidden[:, tokens], own)
            torch.testing.assert_close(travelled[:, tokens], expected, rtol=0, atol=1e-6)
            assert (travelled[:, tokens] - plain[:, tokens]).abs().max() > 1e-3
    torch.testing.assert_close(travelled[:, 2 * per_frame :], plain[:, 2 * per_frame :], rtol=0, atol=1e-6)
    torch.testing.assert_close(after, plain, rtol=0, atol=0)  # the processor is back


def test_a_masked_batched_call_travels_only_its_prompt_row_after_the_keyframe_tokens(ltx) -> None:
    """LTX-Video: [negative, prompt] in one call, a text mask, keyframe tokens before the grid."""
    attention = ltx.transformer.transformer_blocks[0].attn2
    width, per_frame, extra, length = attention.to_q.in_features, 4, 3, 10
    hidden = randn(2, extra + 3 * per_frame, width)
    context = randn(2, length, width, seed=1)
    bias = torch.zeros(2, 1, length)
    bias[:, :, 7:] = -10000.0
    own_bias = torch.zeros(1, 1, length)
    own_bias[:, :, 4:] = -10000.0
    text = FrameText(randn(1, length, width, seed=2), own_bias, per_frame, start=extra, row=1)
    with torch.no_grad():
        plain = attention(hidden, context, bias)
        with frame_text([attention], text):
            travelled = attention(hidden, context, bias)
        frame = slice(extra, extra + per_frame)
        expected = attention(hidden[1:, frame], text.context, own_bias)
    torch.testing.assert_close(travelled[0], plain[0], rtol=0, atol=1e-6)  # the negative row as it was
    torch.testing.assert_close(travelled[1:, frame], expected, rtol=0, atol=1e-6)
    untouched = torch.cat([travelled[1, :extra], travelled[1, extra + per_frame :]])
    torch.testing.assert_close(
        untouched, torch.cat([plain[1, :extra], plain[1, extra + per_frame :]]), rtol=0, atol=1e-6
    )


def wan_request(engine: WanEngine, **fields) -> Request:
    resolved = {
        "scheduler": "unipc",
        "guidance_2": None,
        "strength": None,
        "num_frames": 9,
        "height": 32,
        "width": 32,
    }
    return Request(prompt=PROMPT, model="tiny").model_copy(
        update={**resolved, "steps": 2, "guidance": 5.0, **fields}
    )


def test_wan_travel_moves_the_first_frames_toward_the_previous_prompt(wan) -> None:
    engine = wan["wan-t2v"]
    request = wan_request(engine)
    prompt, previous = engine.encode_prompt(PROMPT), engine.encode_prompt(PREVIOUS)
    assert engine.travelling_text(request, Inputs(previous_prompt=PROMPT, travel_frames=4), prompt) == {}
    (text,) = engine.travelling_text(
        request, Inputs(previous_prompt=PREVIOUS, travel_frames=4), prompt
    ).values()
    model = engine.transformer
    assert text.frames == 2 and text.tokens_per_frame == 4  # weights 0 and 0.75 of [0, 0.75, 1]
    with torch.no_grad():
        embedder = model.condition_embedder.text_embedder
        torch.testing.assert_close(text.context[0], embedder(previous)[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(
            text.context[1], embedder(0.25 * previous + 0.75 * prompt)[0], rtol=0, atol=1e-6
        )
        latents, t = randn(1, 16, 3, 4, 4), torch.tensor([700.0])
        new = engine.predict(model, latents, t, None, prompt, "cond")
        old = engine.predict(model, latents, t, None, previous, "cond")
        travelled = engine.predict(model, latents, t, None, prompt, "cond", text)
    assert closer(travelled[:, :, 0], old[:, :, 0], than=new[:, :, 0])
    assert closer(travelled[:, :, 2], new[:, :, 2], than=old[:, :, 2])


def test_both_a14b_experts_travel_with_their_own_text_projection(wan) -> None:
    engine = wan["wan-a14b"]
    prompt = engine.encode_prompt(PROMPT)
    texts = engine.travelling_text(
        wan_request(engine), Inputs(previous_prompt=PREVIOUS, travel_frames=4), prompt
    )
    assert set(texts) == {"transformer", "transformer_2"}
    assert (texts["transformer"].context - texts["transformer_2"].context).abs().max() > 1e-3


def test_ltx_travel_keeps_the_negative_row_and_moves_the_first_frames(ltx) -> None:
    fields = {"num_frames": 17, "height": 64, "width": 64, "steps": 2, "guidance": 3.0, "strength": 0.8}
    request = Request(prompt=PROMPT, model="tiny").model_copy(update=fields)
    inputs = Inputs(video=np.zeros((17, 64, 64, 3), np.uint8), previous_prompt=PREVIOUS, travel_frames=4)
    plan = ltx.plan(request, inputs)
    prompt, previous, negative = (ltx.encode_prompt(text, True) for text in (PROMPT, PREVIOUS, ""))
    text = ltx.travelling_text(request, inputs, prompt, plan, row=1)
    assert text is not None and text.frames == 2  # weights 0 and 0.875 of [0, 0.875, 1]
    first = previous.mask[0].to(torch.float32) * 10000.0 - 10000.0
    torch.testing.assert_close(text.bias[0, 0], first)
    _, _, frames, height, width = plan.shape
    from videogen.families.ltx import Tokens, _batched

    tokens = Tokens(randn(1, frames * height * width, ltx.transformer.config.in_channels))
    t = torch.tensor([700.0])

    def call(context, travel=None) -> torch.Tensor:
        with torch.no_grad():
            return ltx.predict(tokens.latents, t, context, tokens, plan, 25.0, 2, travel).view(2, frames, -1)

    new, old = call(_batched(negative, prompt)), call(_batched(negative, previous))
    travelled = call(_batched(negative, prompt), text)
    torch.testing.assert_close(travelled[0], new[0], rtol=0, atol=1e-5)
    assert closer(travelled[1, 0], old[1, 0], than=new[1, 0])
    assert closer(travelled[1, 2], new[1, 2], than=old[1, 2])


def spied_travel(monkeypatch, engine_class) -> list:
    """The prompt travel each segment's engine call worked out."""
    seen = []
    original = engine_class.travelling_text

    def spy(self, *args, **kwargs):
        seen.append(original(self, *args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(engine_class, "travelling_text", spy)
    return seen


@pytest.mark.parametrize("name", ["wan-t2v", "wan-ti2v"])
def test_a_wan_chain_travels_into_each_changed_prompt(folders, tmp_path, monkeypatch, name) -> None:
    """By video (T2V) and by image (TI2V from an image): the second segment travels, the third (the
    same prompt again) does not."""
    seen = spied_travel(monkeypatch, WanEngine)
    fields = {
        "model": str(folders[name]),
        "num_frames": 9,
        "height": 32,
        "width": 32,
        "steps": 2,
        "seed": 1,
        "prompt": "a fox",
    }
    if name == "wan-ti2v":
        image = tmp_path / "start.png"
        Image.new("RGB", (32, 32), (200, 60, 40)).save(image)
        fields["image"] = str(image)
    prompts = ["a fox walks", "a fox runs", "a fox runs"]
    request = resolve(
        parse_request(
            {**fields, "segments": 3, "overlap": 4, "segment_prompts": prompts, "out_dir": str(tmp_path)}
        )
    ).request
    result = generate(request)
    assert result.videos[0].files["mp4"].exists()
    assert [len(texts) for texts in seen] == [0, 1, 0]
    assert next(iter(seen[1].values())).frames == 2


def test_an_ltx_chain_travels_into_the_changed_prompt(folders, tmp_path, monkeypatch) -> None:
    seen = spied_travel(monkeypatch, LTXEngine)
    fields = {
        "model": str(folders["ltx"]),
        "num_frames": 17,
        "height": 64,
        "width": 64,
        "steps": 2,
        "seed": 1,
        "prompt": "a fox",
    }
    prompts = ["a fox walks", "a fox runs"]
    request = resolve(
        parse_request(
            {**fields, "segments": 2, "overlap": 4, "segment_prompts": prompts, "out_dir": str(tmp_path)}
        )
    ).request
    generate(request)
    assert seen[0] is None and seen[1] is not None and seen[1].frames == 2
