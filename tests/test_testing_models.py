"""The tiny models of videogen.testing load with the diffusers pipelines and generate frames."""

from __future__ import annotations

import json
import math
import re
from itertools import pairwise
from pathlib import Path

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPTokenizer, CLIPTokenizerFast

from videogen.testing import build_tiny_model, build_tiny_svd, build_tiny_unet3d, write_tiny_clip_tokenizer
from videogen.testing._tokenizer import bytes_to_unicode

PROMPTS = [
    "A panda eating bamboo on a rock",
    "ocean waves crashing at sunset, 4k",
    "a knight's horse galloping through unseen xylophones!",
]


@pytest.fixture(scope="module")
def unet3d_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_unet3d(tmp_path_factory.mktemp("unet3d"))


@pytest.fixture(scope="module")
def svd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_svd(tmp_path_factory.mktemp("svd"))


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tokenizer")
    write_tiny_clip_tokenizer(folder)
    return folder


def reference_clip_ids(text: str, folder: Path) -> list[int]:
    """Token ids by OpenAI CLIP's own BPE algorithm (simple_tokenizer.py), for ASCII text."""
    vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    ranks = {tuple(line.split()): rank for rank, line in enumerate(lines)}
    byte_encoder = bytes_to_unicode()
    ids = [vocab["<|startoftext|>"]]
    for word in re.findall(r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+", text.lower()):
        chars = "".join(byte_encoder[b] for b in word.encode("utf-8"))
        symbols = [*chars[:-1], chars[-1] + "</w>"]
        while len(symbols) > 1:
            best = min(pairwise(symbols), key=lambda pair: ranks.get(pair, math.inf))
            if best not in ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                if symbols[i : i + 2] == list(best):
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        ids += [vocab[symbol] for symbol in symbols]
    return [*ids, vocab["<|endoftext|>"]]


def test_tokenizer_matches_clip_bpe_in_every_implementation(tokenizer_dir: Path) -> None:
    for cls in {CLIPTokenizer, CLIPTokenizerFast}:
        tokenizer = cls.from_pretrained(tokenizer_dir)
        for prompt in PROMPTS:
            assert tokenizer(prompt).input_ids == reference_clip_ids(prompt, tokenizer_dir), (cls, prompt)


def test_tokenizer_round_trips_and_pads_to_77(tokenizer_dir: Path) -> None:
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    ids = tokenizer(PROMPTS[0]).input_ids
    assert tokenizer.convert_ids_to_tokens(ids[1:4]) == ["a</w>", "panda</w>", "eating</w>"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == PROMPTS[0].lower()
    batch = tokenizer(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    assert tokenizer.model_max_length == 77
    assert batch.input_ids.shape == (len(PROMPTS), 77)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == len(tokenizer) - 1
    assert batch.input_ids[0, -1].item() == tokenizer.pad_token_id
    long = tokenizer(" ".join(["panda"] * 100), padding="max_length", max_length=77, truncation=True)
    assert len(long.input_ids) == 77 and long.input_ids[-1] == tokenizer.eos_token_id


def test_unet3d_loads_in_text_to_video_pipeline(unet3d_dir: Path) -> None:
    index = json.loads((unet3d_dir / "model_index.json").read_text())
    assert index["_class_name"] == "TextToVideoSDPipeline"
    pipe = diffusers.TextToVideoSDPipeline.from_pretrained(unet3d_dir)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae_scale_factor == 8
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer)
    assert pipe.text_encoder.config.eos_token_id == pipe.tokenizer.eos_token_id
    assert pipe.scheduler.config.steps_offset == 1
    out = pipe(
        PROMPTS[0],
        num_frames=4,
        height=64,
        width=48,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    )
    assert out.frames.shape == (1, 4, 64, 48, 3)
    assert np.isfinite(out.frames).all()


def test_svd_loads_in_stable_video_diffusion_pipeline(svd_dir: Path) -> None:
    index = json.loads((svd_dir / "model_index.json").read_text())
    assert index["_class_name"] == "StableVideoDiffusionPipeline"
    pipe = diffusers.StableVideoDiffusionPipeline.from_pretrained(svd_dir)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae_scale_factor == 8
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    unet = pipe.unet.config
    assert unet.projection_class_embeddings_input_dim == 3 * unet.addition_time_embed_dim
    assert unet.cross_attention_dim == pipe.image_encoder.config.projection_dim
    pixels = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    out = pipe(
        Image.fromarray(pixels),
        num_frames=4,
        height=64,
        width=48,
        num_inference_steps=2,
        decode_chunk_size=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    )
    assert out.frames.shape == (1, 4, 64, 48, 3)
    assert np.isfinite(out.frames).all()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize("family", ["unet3d", "svd"])
def test_builds_are_deterministic_per_seed(
    family: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    reference = _files(request.getfixturevalue(f"{family}_dir"))
    assert not [name for name in reference if name.endswith(".bin")]
    weights = [name for name in reference if name.endswith(".safetensors")]
    assert len(weights) == 3

    rng_state = torch.get_rng_state()
    same = _files(build_tiny_model(family, tmp_path / "same", seed=0))
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert same == reference

    other = _files(build_tiny_model(family, tmp_path / "other", seed=1))
    assert other.keys() == reference.keys()
    for name in reference:
        assert (other[name] == reference[name]) == (name not in weights), name


def test_build_tiny_model_rejects_unknown_family(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unet3d"):
        build_tiny_model("dit", tmp_path)
