"""Which fields each kind of model takes, text that cannot be stored, and the conventions people bring
from other tools (seed -1, a sidecar as a config). No weights needed: the catalog's specs decide."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videogen.errors import FieldError, UserError
from videogen.families import KINDS
from videogen.request import (
    Request,
    load_config,
    parse_request,
    resolve_request,
    taken_fields,
)

SVD = {"model": "svd", "image": "still.png"}
SV3D_U = {"model": "sv3d-u", "image": "still.png"}
SV3D_P = {"model": "sv3d-p", "image": "still.png"}
T2V = {"model": "modelscope-t2v", "prompt": "a panda"}


@pytest.mark.parametrize(
    ("base", "extra", "field"),
    [
        (SVD, {"scheduler": "ddim"}, "scheduler"),
        (SVD, {"guidance": 3.0}, "guidance"),
        (SV3D_U, {"guidance": 3.0}, "guidance"),
        (SVD, {"camera_path": "wave"}, "camera_path"),
        (SV3D_U, {"elevations": [5.0]}, "elevations"),
        (SV3D_U, {"motion_bucket_id": 40}, "motion_bucket_id"),
        (SV3D_P, {"noise_aug_strength": 0.1}, "noise_aug_strength"),
        (SV3D_P, {"background": "black"}, "background"),
        (SV3D_P, {"azimuths": [0.0, 1.0]}, "azimuths"),
        (SVD, {"noise_mode": "shared"}, "noise_mode"),
        (SVD, {"remove_background": False}, "remove_background"),
        (T2V, {"strength": 0.4}, "strength"),
        (T2V, {"pin_first_frame": True}, "pin_first_frame"),
        (T2V, {"upscale_strength": 0.4}, "upscale_strength"),
        (T2V, {"image_frame_ratio": 0.5}, "image_frame_ratio"),
        ({**T2V, "image": "still.png"}, {"noise_mix": 0.2}, "noise_mix"),
    ],
)
def test_fields_a_model_does_not_use_are_refused(base: dict, extra: dict, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        resolve_request(Request(**base, **extra))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_resolving_fills_only_what_the_model_reads() -> None:
    """SVD's record never claims a text-to-video guidance scale; SV3D's never an SVD motion bucket."""
    svd, _ = resolve_request(Request(**SVD))
    assert svd.guidance is None and svd.min_guidance == 1.0 and svd.max_guidance == 2.5
    assert svd.motion_bucket_id == 127 and svd.scheduler == "euler"
    sv3d, _ = resolve_request(Request(**SV3D_P))
    assert sv3d.guidance is None and sv3d.motion_bucket_id is None and sv3d.cond_fps is None
    assert sv3d.image_frame_ratio == 0.85
    t2v, _ = resolve_request(Request(**T2V))
    assert t2v.guidance == 9.0 and t2v.min_guidance is None and t2v.motion_bucket_id is None


def test_a_resolved_request_resolves_again_unchanged() -> None:
    """What a sidecar records can be submitted again (re-run, --config SIDECAR) and means the same."""
    for fields in (SVD, SV3D_P, T2V, {**T2V, "image": "still.png", "noise_mode": "mixed", "noise_mix": 0.3}):
        once, _ = resolve_request(Request(**fields))
        twice, _ = resolve_request(Request(**once.model_dump()))
        assert twice == once


def test_every_field_is_taken_by_some_kind_of_model() -> None:
    taken = set().union(*(taken_fields_of(kind) for kind in KINDS))
    assert taken == set(Request.model_fields)


def taken_fields_of(kind: str) -> frozenset[str]:
    from videogen.catalog import CATALOG

    spec = next(spec for spec in CATALOG.values() if spec.kind == kind)
    return taken_fields(spec)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"steps": True}, "steps"),
        ({"guidance": False}, "guidance"),
        ({"num_videos": True}, "num_videos"),
        ({"azimuths": [1.0, True]}, "azimuths.1"),
        ({"prompt": "a \ud800"}, "prompt"),
        ({"prompt": "a\x00b"}, "prompt"),
        ({"image": "still\x07.png"}, "image"),
        ({"background": "not-a-colour"}, "background"),
        ({"prompt": "a" * 20_001}, "prompt"),
        ({"seed": -2}, "seed"),
        ({"guidance": float("nan")}, "guidance"),
        ({"fps": float("inf")}, "fps"),
    ],
)
def test_values_no_model_can_take_are_refused_naming_the_field(fields: dict, field: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_request(fields)
    message = str(caught.value)
    assert message.startswith(f"{field}: ")
    assert len(message) < 300  # a huge input is not echoed back whole


def test_bounds_are_written_as_given() -> None:
    with pytest.raises(UserError, match=r"must be < 9223372036854775808$"):
        parse_request({"seed": 2**64})
    with pytest.raises(UserError, match=r"guidance: nan is not allowed; input should be a finite number"):
        parse_request({"guidance": float("nan")})


def test_prompts_keep_line_breaks_and_any_script() -> None:
    prompt = "一只猫在冲浪\n\tune vague, l'été 🌊"
    assert parse_request({"prompt": prompt}).prompt == prompt


def test_seed_minus_one_means_random() -> None:
    assert Request(seed=-1).seed is None
    assert Request(seed=0).seed == 0


def test_a_sidecar_is_a_config(tmp_path: Path) -> None:
    resolved, _ = resolve_request(Request(**T2V, seed=5, steps=3))
    sidecar = {"videogen_version": "0.1.0", "request": resolved.model_dump(mode="json"), "seed": 5}
    path = tmp_path / "clip.json"
    path.write_text(json.dumps(sidecar))
    again, _ = resolve_request(parse_request(load_config(path)))
    assert again == resolved


def test_a_sidecar_written_before_the_field_rules_still_replays(tmp_path: Path) -> None:
    """Older sidecars of SVD runs recorded a text-to-video guidance the model never read."""
    resolved, _ = resolve_request(Request(**SVD, seed=3))
    old = {**resolved.model_dump(mode="json"), "guidance": 2.5}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"videogen_version": "0.1.0", "request": old}))
    again, _ = resolve_request(parse_request(load_config(path)))
    assert again == resolved
    plain = tmp_path / "plain.yaml"
    plain.write_text("model: svd\nimage: still.png\nguidance: 2.5\n")
    with pytest.raises(FieldError, match="guidance"):  # a config a person wrote is not forgiven
        resolve_request(parse_request(load_config(plain)))
