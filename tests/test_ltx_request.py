"""LTX-Video at the front door: catalog defaults, the schedule, keyframes, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError
from typer.testing import CliRunner

from videogen.catalog import resolve_model
from videogen.cli import app
from videogen.errors import FieldError
from videogen.inputs import load_inputs
from videogen.media.writers import write_mp4
from videogen.request import Request, resolve_request, split_keyframe

SHAPE = {"num_frames": 17, "height": 64, "width": 96}


def _resolved(**fields) -> Request:
    return resolve_request(Request(prompt="a lighthouse at dusk", **fields))[0]


def test_each_release_gets_its_model_cards_settings() -> None:
    base = _resolved(model="ltx-video")
    assert (base.num_frames, base.height, base.width, base.fps) == (161, 480, 704, 24.0)
    assert (base.steps, base.timesteps, base.guidance, base.decode_timestep) == (50, None, 3.0, 0.0)
    timestep_vae = _resolved(model="ltx-video-0.9.5")
    assert (timestep_vae.height, timestep_vae.width, timestep_vae.steps) == (512, 768, 40)
    assert (timestep_vae.decode_timestep, timestep_vae.decode_noise_scale) == (0.05, 0.025)
    assert timestep_vae.image_cond_noise_scale == 0.025
    distilled = _resolved(model="ltx-video-distilled")
    assert distilled.timesteps == [1000.0, 993.0, 987.0, 981.0, 975.0, 909.0, 725.0, 0.03]
    assert (distilled.steps, distilled.guidance, distilled.guidance_rescale) == (8, 1.0, 0.7)


@pytest.mark.parametrize("model", ["ltx-video", "ltx-video-distilled", "wan2.1-t2v-1.3b", "modelscope-t2v"])
def test_a_resolved_request_resolves_to_itself(model) -> None:
    """A resolved request handed on (a chain's segment, a worker, a cluster actor) is taken again as it
    is: no field the model does not read is filled in, so none is refused the second time."""
    resolved = _resolved(model=model)
    assert resolve_request(resolved)[0] == resolved
    assert (resolved.scheduler is None) == model.startswith("ltx")


def test_steps_or_timesteps_set_the_schedule() -> None:
    evenly = _resolved(model="ltx-video-distilled", steps=20)
    assert (evenly.steps, evenly.timesteps) == (20, None)  # steps given: the distilled schedule is dropped
    custom = _resolved(model="ltx-video", timesteps=[1000, 500, 10])
    assert (custom.steps, custom.timesteps) == (3, [1000, 500, 10])
    with pytest.raises(FieldError, match="steps or timesteps"):
        _resolved(model="ltx-video", steps=4, timesteps=[1000, 500, 10])
    with pytest.raises(ValidationError, match="fall"):
        Request(timesteps=[500, 900])
    with pytest.raises(ValidationError, match="between 0 and 1000"):
        Request(timesteps=[2000, 10])


def test_ltx_rules_name_the_field_and_what_is_allowed() -> None:
    with pytest.raises(FieldError, match="8k\\+1 frames"):
        _resolved(model="ltx-video", num_frames=20)
    with pytest.raises(FieldError, match="multiples of 32"):
        _resolved(model="ltx-video", height=496)
    with pytest.raises(FieldError, match="own flow-matching Euler"):
        _resolved(model="ltx-video", scheduler="ddim")
    with pytest.raises(FieldError, match="from 0 to 16"):
        _resolved(model="ltx-video", keyframe=["end.png@17"], **SHAPE)
    with pytest.raises(FieldError, match="keyframe"):
        _resolved(model="wan2.1-t2v-1.3b", keyframe=["end.png@8"])


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("end.png@96", ("end.png", 96, 1.0)),
        ("shots/a@b.png@8:0.5", ("shots/a@b.png", 8, 0.5)),
        ("C:\\in\\k.png@0:1", ("C:\\in\\k.png", 0, 1.0)),
    ],
)
def test_keyframe_entries_split_at_the_last_at(entry: str, parsed: tuple) -> None:
    assert split_keyframe(entry) == parsed


@pytest.mark.parametrize("entry", ["end.png", "@5", "end.png@", "end.png@-1", "end.png@x", "end.png@4:1.5"])
def test_malformed_keyframes_are_refused_at_the_cli_without_a_traceback(entry: str) -> None:
    result = CliRunner().invoke(app, ["generate", "a boat", "--model", "ltx-video", "--keyframe", entry])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: keyframe:") and "e.g. end.png@96" in result.stderr
    assert "Traceback" not in result.stderr


def test_keyframes_load_as_fitted_frames_and_an_image_becomes_frame_zero(tmp_path: Path) -> None:
    start, end = tmp_path / "start.png", tmp_path / "end.png"
    Image.new("RGB", (200, 100), (250, 10, 10)).save(start)
    Image.new("RGB", (48, 32), (10, 10, 250)).save(end)
    clip = tmp_path / "clip.mp4"
    ramp = np.linspace(0, 255, 12).astype(np.uint8)
    write_mp4(np.broadcast_to(ramp[:, None, None, None], (12, 64, 96, 3)).copy(), clip, 8.0)
    request = _resolved(model="ltx-video", image=str(start), keyframe=[f"{end}@16", f"{clip}@8:0.6"], **SHAPE)
    inputs, record = load_inputs(request, resolve_model("ltx-video"))
    assert inputs.image is None  # the image is the first keyframe
    first, last, moving = inputs.keyframes
    assert (first.frame_index, last.frame_index, moving.frame_index) == (0, 16, 8)
    assert first.frames.shape == last.frames.shape == (1, 64, 96, 3)
    assert abs(int(last.frames[0, 32, 48, 2]) - 250) < 8 and last.frames[0, 32, 48, 0] < 20
    assert moving.frames.shape == (9, 64, 96, 3) and moving.strength == 0.6  # frames 8..16 fit
    assert moving.frames[0].mean() < moving.frames[-1].mean()  # the clip's frames, in order
    assert [entry["name"] for entry in record["keyframe"]] == ["end.png", "clip.mp4"]
    assert record["keyframe"][1]["frames"] == 9


def test_a_missing_keyframe_file_names_the_entry(tmp_path: Path) -> None:
    request = _resolved(model="ltx-video", keyframe=[f"{tmp_path / 'gone.png'}@4"], **SHAPE)
    with pytest.raises(FieldError, match="no such file"):
        load_inputs(request, resolve_model("ltx-video"))
