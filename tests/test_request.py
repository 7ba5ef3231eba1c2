"""The Request schema: every validation error names the field, the value and what is allowed."""

from __future__ import annotations

import pytest

from videogen.errors import FieldError, UserError
from videogen.request import Request, load_config, parse_request, resolve_request


def _error(fields: dict) -> str:
    with pytest.raises(UserError) as info:
        resolve_request(parse_request({"prompt": "a cat", **fields}))
    return str(info.value)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"num_frames": 0}, "num_frames: 0 is not allowed; must be >= 1"),
        ({"height": 100}, "height: 100 is not allowed; must be a positive multiple of 8"),
        ({"width": -8}, "width: -8 is not allowed; must be a positive multiple of 8"),
        ({"steps": 0}, "steps: 0 is not allowed; must be >= 1"),
        ({"guidance": -1.5}, "guidance: -1.5 is not allowed; must be >= 0"),
        ({"fps": 0}, "fps: 0 is not allowed; must be > 0"),
        ({"num_videos": 0}, "num_videos: 0 is not allowed; must be >= 1"),
        (
            {"scheduler": "plms"},
            "scheduler: 'plms' is not allowed; allowed: 'ddim', 'dpm++', 'euler' or 'unipc'",
        ),
        ({"formats": ["avi"]}, "formats.0: 'avi' is not allowed; allowed: 'mp4', 'webm', 'gif' or 'frames'"),
        ({"device": "tpu"}, "device: 'tpu' is not allowed; allowed: 'auto', 'cpu', 'cuda' or 'mps'"),
    ],
)
def test_field_errors_name_field_value_and_range(fields: dict, expected: str) -> None:
    assert _error(fields) == expected


def test_unknown_field_is_rejected_with_the_known_ones() -> None:
    message = _error({"num_frame": 8})
    assert message.startswith("num_frame: 8 is not allowed; unknown field; known fields: prompt,")
    assert "num_frames" in message


def test_unknown_model_lists_known_ids() -> None:
    message = _error({"model": "sora"})
    assert message.startswith(
        "model: 'sora' is not allowed; known models: modelscope-t2v, zeroscope-v2-576w,"
    )


def test_frames_over_the_model_limit() -> None:
    with pytest.raises(FieldError) as info:
        resolve_request(Request(prompt="a cat", model="modelscope-t2v", num_frames=65))
    assert str(info.value) == "num_frames: 65 is not allowed; modelscope-t2v takes 1 to 64 frames"


def test_text_to_video_needs_a_prompt() -> None:
    with pytest.raises(
        FieldError, match="prompt: None is not allowed; modelscope-t2v is a text-to-video model"
    ):
        resolve_request(Request(model="modelscope-t2v"))


def test_several_errors_are_reported_together() -> None:
    lines = _error({"steps": 0, "height": 12}).splitlines()
    assert [line.split(":")[0] for line in lines] == ["height", "steps"]


@pytest.mark.parametrize(
    ("model", "frames", "size", "guidance"),
    [("modelscope-t2v", 16, (256, 256), 9.0), ("zeroscope-v2-576w", 24, (320, 576), 9.0)],
)
def test_catalog_defaults_fill_the_request(model: str, frames: int, size: tuple, guidance: float) -> None:
    resolved, spec = resolve_request(Request(prompt="waves", model=model))
    assert (resolved.num_frames, (resolved.height, resolved.width), resolved.guidance) == (
        frames,
        size,
        guidance,
    )
    assert resolved.scheduler == "ddim" and spec.family == "unet3d"


def test_explicit_values_win_over_defaults() -> None:
    resolved, _ = resolve_request(Request(prompt="waves", num_frames=8, guidance=0.0, steps=3))
    assert (resolved.num_frames, resolved.guidance, resolved.steps) == (8, 0.0, 3)


def test_local_folder_is_a_model(tiny_unet3d) -> None:
    resolved, spec = resolve_request(Request(prompt="waves", model=str(tiny_unet3d)))
    assert spec.family == "unet3d" and spec.local_dir == tiny_unet3d.resolve()
    assert resolved.height % 8 == 0


def test_folder_without_model_index_is_explained(tmp_path) -> None:
    with pytest.raises(UserError, match="has no model_index.json"):
        resolve_request(Request(prompt="waves", model=str(tmp_path)))


def test_config_errors(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1, 2\n")
    with pytest.raises(UserError, match="is not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- steps\n")
    with pytest.raises(UserError, match="must hold a mapping of request fields"):
        load_config(listing)
    with pytest.raises(UserError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_weight_files_of_one_variant_only() -> None:
    """Without a variant, fp16 files are neither fetched nor taken for the fp32 weights."""
    from fnmatch import fnmatch

    from videogen.catalog import CATALOG
    from videogen.loading import weight_patterns

    spec = CATALOG["modelscope-t2v"]
    plain = weight_patterns(spec, None)
    assert any(fnmatch("unet/diffusion_pytorch_model.safetensors", p) for p in plain)
    assert any(fnmatch("unet/diffusion_pytorch_model-00001-of-00002.safetensors", p) for p in plain)
    assert not any(fnmatch("unet/diffusion_pytorch_model.fp16.safetensors", p) for p in plain)
    fp16 = weight_patterns(spec, "fp16")
    assert any(fnmatch("unet/diffusion_pytorch_model.fp16.safetensors", p) for p in fp16)


def test_a_wan_download_fetches_its_experts_shards_and_the_umt5_tokenizer() -> None:
    from fnmatch import fnmatch

    from videogen.catalog import CATALOG
    from videogen.loading import weight_patterns

    patterns = weight_patterns(CATALOG["wan2.2-t2v-a14b"], None)
    for name in (
        "transformer/diffusion_pytorch_model-00001-of-00012.safetensors",
        "transformer_2/diffusion_pytorch_model.safetensors.index.json",
        "text_encoder/model-00001-of-00005.safetensors",
        "tokenizer/spiece.model",
        "tokenizer/tokenizer.json",
        "scheduler/scheduler_config.json",
    ):
        assert any(fnmatch(name, pattern) for pattern in patterns), name
