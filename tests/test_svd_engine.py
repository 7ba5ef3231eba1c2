"""The SVD family engine: parity with diffusers' StableVideoDiffusionPipeline, and SV3D's conditioning."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableVideoDiffusionPipeline
from PIL import Image

from videogen.engines import load_engine
from videogen.errors import Cancelled, FieldError, UserError
from videogen.families.base import Inputs
from videogen.families.sv3d_camera import (
    CAMERA_PATHS,
    camera_path_angles,
    model_angles,
    orbit_angles,
    orbit_azimuths,
)
from videogen.families.sv3d_conditioning import frame_embeddings, unet_with_frame_vectors
from videogen.families.svd import SVDEngine
from videogen.families.svd_layout import vector_layout
from videogen.request import Request
from videogen.sampling.guidance import linear_guidance, triangle_guidance
from videogen.sampling.progress import ProgressEvent, Reporter
from videogen.testing import build_tiny_model

SIZE = 64
SVD_FIELDS = {
    "num_frames": 4,
    "height": SIZE,
    "width": SIZE,
    "steps": 3,
    "scheduler": "euler",
    "cond_fps": 6,
    "motion_bucket_id": 100,
    "noise_aug_strength": 0.05,
    "min_guidance": 1.0,
    "max_guidance": 3.0,
    "cache_interval": 1,
    "guidance_end": 1.0,
}
SV3D_FIELDS = {**SVD_FIELDS, "num_frames": 5, "steps": 2, "max_guidance": 2.5}


def _image() -> Image.Image:
    """Gradients with a red square: structure at every scale, so every stage of the model matters."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    pixels = np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    pixels[20:40, 24:44] = (250, 30, 60)
    return Image.fromarray(pixels)


def _load(folder: Path) -> SVDEngine:
    return load_engine("svd", folder, torch.device("cpu"), torch.float32, None)


@pytest.fixture(scope="module")
def svd(tiny_svd: Path) -> SVDEngine:
    return _load(tiny_svd)


@pytest.fixture(scope="module")
def sv3d_u(tmp_path_factory: pytest.TempPathFactory) -> SVDEngine:
    return _load(build_tiny_model("sv3d-u", tmp_path_factory.mktemp("models") / "tiny-sv3d-u"))


@pytest.fixture(scope="module")
def sv3d_p(tmp_path_factory: pytest.TempPathFactory) -> SVDEngine:
    return _load(build_tiny_model("sv3d-p", tmp_path_factory.mktemp("models") / "tiny-sv3d-p"))


def _request(engine: SVDEngine, **fields) -> Request:
    base = SVD_FIELDS if engine.layout.kind == "svd" else SV3D_FIELDS
    return Request(model="tiny", **{**base, **fields})


def _run(engine: SVDEngine, request: Request, seeds: list[int], **reporter):
    report = Reporter(reporter.get("callback"), reporter.get("cancel"), len(seeds))
    return engine.generate(request, seeds, report, Inputs(image=_image()))


# (a) parity with diffusers


@pytest.mark.parametrize(("max_guidance", "chunk"), [(3.0, 3), (1.0, None)])
def test_matches_stable_video_diffusion_pipeline(svd, tiny_svd, max_guidance, chunk) -> None:
    reference = StableVideoDiffusionPipeline.from_pretrained(tiny_svd)
    reference.set_progress_bar_config(disable=True)
    request = _request(svd, max_guidance=max_guidance, decode_chunk_size=chunk)
    expected = reference(
        _image(),
        height=SIZE,
        width=SIZE,
        num_frames=request.num_frames,
        num_inference_steps=request.steps,
        min_guidance_scale=request.min_guidance,
        max_guidance_scale=max_guidance,
        fps=request.cond_fps + 1,  # diffusers conditions on fps - 1
        motion_bucket_id=request.motion_bucket_id,
        noise_aug_strength=request.noise_aug_strength,
        decode_chunk_size=chunk,
        generator=torch.Generator("cpu").manual_seed(7),
        output_type="np",
    ).frames[0]
    (video,) = _run(svd, request, [7])
    assert video.frames.shape == expected.shape == (4, SIZE, SIZE, 3)
    assert np.abs(video.frames - expected).max() < 1e-4
    assert video.frames.std() > 0.01, "frames should not be flat"
    assert video.record["guided"] is (max_guidance > 1)
    assert video.record["decode_chunk_size"] == (chunk or 4)  # None: all 4 frames fit (at most 14)


def test_batch_item_k_equals_a_single_run_with_seed_plus_k(svd) -> None:
    request = _request(svd, steps=2)
    batch = _run(svd, request, [10, 11])
    (single,) = _run(svd, request, [11])
    np.testing.assert_array_equal(batch[1].frames, single.frames)
    assert np.abs(batch[0].frames - batch[1].frames).max() > 1e-3


# (b), (c) the added conditioning vector


def test_vector_layouts_of_the_real_configs() -> None:
    def layout(width: int):
        return vector_layout({"addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": width})

    assert (layout(768).kind, layout(768).widths) == ("svd", (256, 256, 256))
    assert (layout(256).kind, layout(256).widths) == ("sv3d_u", (256,))
    assert (layout(1280).kind, layout(1280).widths) == ("sv3d_p", (256, 512, 512))
    with pytest.raises(UserError, match="1000"):
        layout(1000)


def _sinusoid(value: float, width: int) -> list[float]:
    """sgm's timestep_embedding of one scalar: cos of each frequency, then sin."""
    half = width // 2
    freqs = [math.exp(-math.log(10000) * j / half) for j in range(half)]
    return [math.cos(value * f) for f in freqs] + [math.sin(value * f) for f in freqs]


def test_sv3d_p_added_embedding_is_per_frame_and_matches_a_hand_computation(sv3d_p) -> None:
    request = _request(sv3d_p, num_frames=21, elevations=[20.0])
    plan = sv3d_p.plan(request)
    with torch.inference_mode():
        embeddings = frame_embeddings(sv3d_p.unet, plan.vectors, sv3d_p.layout.widths)
    assert embeddings.shape == (21, sv3d_p.unet.config.block_out_channels[0] * 4)
    assert all((embeddings[i] - embeddings[-1]).abs().max() > 1e-4 for i in range(20))

    w = sv3d_p.unet.config.addition_time_embed_dim
    frame = 4
    polar, azimuth = math.radians(90 - 20), math.radians(360 * (frame + 1) / 21)
    by_hand = _sinusoid(1e-5, w) + _sinusoid(polar, 2 * w) + _sinusoid(azimuth, 2 * w)
    with torch.inference_mode():
        expected = sv3d_p.unet.add_embedding(torch.tensor([by_hand]))[0]
    torch.testing.assert_close(embeddings[frame], expected, rtol=0, atol=1e-5)


def _unet_inputs(engine: SVDEngine, frames: int = 3):
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2, frames, 8, 8, 8, generator=generator)
    hidden = torch.randn(2, 1, engine.unet.config.cross_attention_dim, generator=generator)
    return sample, torch.tensor(0.7), hidden


@pytest.mark.parametrize(("engine_name", "vector"), [("sv3d_u", [1e-5]), ("svd", [6.0, 127.0, 0.02])])
def test_per_frame_path_with_identical_rows_equals_the_stock_forward(engine_name, vector, request) -> None:
    engine: SVDEngine = request.getfixturevalue(engine_name)
    sample, t, hidden = _unet_inputs(engine)
    with torch.inference_mode():
        stock = engine.unet(sample, t, hidden, added_time_ids=torch.tensor([vector] * 2)).sample
        rows = torch.tensor([vector] * sample.shape[1])
        per_frame = unet_with_frame_vectors(engine.unet, sample, t, hidden, rows, engine.layout.widths)
        again = engine.unet(sample, t, hidden, added_time_ids=torch.tensor([vector] * 2)).sample
    torch.testing.assert_close(per_frame, stock, rtol=0, atol=1e-5)
    torch.testing.assert_close(again, stock, rtol=0, atol=0)  # the hooks are gone afterwards


def test_per_frame_vectors_change_the_prediction(sv3d_p) -> None:
    sample, t, hidden = _unet_inputs(sv3d_p)
    rows = sv3d_p.plan(_request(sv3d_p, num_frames=3)).vectors
    with torch.inference_mode():
        varying = unet_with_frame_vectors(sv3d_p.unet, sample, t, hidden, rows, sv3d_p.layout.widths)
        fixed = unet_with_frame_vectors(
            sv3d_p.unet, sample, t, hidden, rows[-1:].repeat(3, 1), sv3d_p.layout.widths
        )
    assert (varying[:, :2] - fixed[:, :2]).abs().max() > 1e-4


# (d) guidance schedules


def test_triangle_guidance_over_21_frames() -> None:
    scale = triangle_guidance(1.0, 2.5, 21)
    position = torch.linspace(0, 1, 21)
    sgm = 2 * (position - torch.floor(position + 0.5)).abs() * 1.5 + 1.0  # TrianglePredictionGuider
    torch.testing.assert_close(scale, sgm)
    assert scale[0] == scale[-1] == 1.0 and scale[10] == 2.5
    torch.testing.assert_close(scale, scale.flip(0))
    torch.testing.assert_close(scale[1:11] - scale[:10], torch.full((10,), 0.15))


def test_linear_guidance() -> None:
    torch.testing.assert_close(linear_guidance(1.0, 3.0, 4), torch.tensor([1.0, 5 / 3, 7 / 3, 3.0]))


# (e) camera paths and validation


@pytest.mark.parametrize("path", list(CAMERA_PATHS))
def test_camera_presets_give_one_angle_pair_per_frame_in_range(path) -> None:
    elevations, azimuths = camera_path_angles(path, 21, 10.0)
    assert len(elevations) == len(azimuths) == 21
    assert all(-90 <= e <= 90 for e in elevations)
    assert all(0 <= a < 360 for a in azimuths)
    assert azimuths[-1] == 0, "the last view is the input view"
    assert len(set(elevations) | set(azimuths)) > 2


def test_camera_preset_shapes() -> None:
    orbit = camera_path_angles("orbit", 21, 5.0)
    assert orbit == ([5.0] * 21, orbit_azimuths(21))
    assert orbit_azimuths(21)[:2] == pytest.approx([360 / 21, 720 / 21]) and orbit_azimuths(21)[-1] == 0
    wave, _ = camera_path_angles("wave", 21, 10.0)
    assert min(wave) == pytest.approx(0, abs=0.2) and max(wave) == pytest.approx(20, abs=0.2)
    assert wave[-1] == 10.0
    spiral, _ = camera_path_angles("spiral", 21, 10.0)
    assert (spiral[0], spiral[-1]) == (-10.0, 30.0) and spiral == sorted(spiral)
    _, swing = camera_path_angles("front-back", 21, 10.0)
    signed = [a - 360 if a > 180 else a for a in swing]
    assert 85 < max(signed) <= 90 and -90 <= min(signed) < -85


def test_model_angles_are_polar_and_relative_to_the_last_view() -> None:
    azimuths = [(a + 30) % 360 for a in orbit_azimuths(21)]
    polars, relative = model_angles([10.0] * 21, azimuths)
    assert polars == pytest.approx([math.radians(80)] * 21)
    assert relative == pytest.approx([math.radians(a) for a in orbit_azimuths(21)])


def test_default_orbit_is_the_sampling_scripts() -> None:
    elevations, azimuths = orbit_angles(21, None, None, None)
    assert elevations == [10.0] * 21
    assert azimuths == pytest.approx(list(np.linspace(0, 360, 22)[1:] % 360))
    assert orbit_angles(3, [5.0], [0, 10, 20], None) == ([5.0] * 3, [0, 10, 20])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"elevations": [1.0, 2.0, 3.0]}, "elevations"),
        ({"elevations": [95.0]}, "elevations"),
        ({"azimuths": [0.0] * 20}, "azimuths"),
        ({"camera_path": "zigzag"}, "camera_path"),
        ({"camera_path": "orbit", "azimuths": [0.0] * 21}, "azimuths"),
        ({"camera_path": "wave", "elevations": [0.0] * 21}, "elevations"),
    ],
)
def test_orbit_validation_names_the_field(fields, field) -> None:
    args = {"elevations": None, "azimuths": None, "camera_path": None, **fields}
    with pytest.raises(FieldError) as caught:
        orbit_angles(21, **args)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


# (f) progress and cancellation


def test_progress_reports_every_step_of_every_video(svd) -> None:
    events: list[ProgressEvent] = []
    _run(svd, _request(svd), [0, 1], callback=events.append)
    steps = [(e.video, e.step, e.total) for e in events if e.stage == "denoise"]
    assert steps == [(v, s, 3) for v in (0, 1) for s in (1, 2, 3)]
    assert [e.stage for e in events if e.stage != "denoise"] == ["encode", "decode", "decode"]


def test_cancel_flag_stops_between_steps(svd) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def on_event(event: ProgressEvent) -> None:
        if event.stage == "denoise":
            seen.append(event.step)
            cancel.set()

    with pytest.raises(Cancelled):
        _run(svd, _request(svd), [0], callback=on_event, cancel=cancel)
    assert seen == [1]


# (g) SV3D output


@pytest.mark.parametrize(("engine_name", "fields"), [("sv3d_u", {}), ("sv3d_p", {"camera_path": "wave"})])
def test_sv3d_last_frame_is_the_input_view(engine_name, fields, request) -> None:
    engine: SVDEngine = request.getfixturevalue(engine_name)
    (video,) = _run(engine, _request(engine, **fields), [3])
    view = np.asarray(_image(), dtype=np.float32) / 255
    assert video.frames.shape == (5, SIZE, SIZE, 3)
    np.testing.assert_allclose(video.frames[-1], view, atol=1e-6)
    assert np.abs(video.frames[0] - view).max() > 0.05
    assert video.record["variant"] == engine_name and video.record["cond_aug"] == 1e-5
    assert video.record["guidance_schedule"] == "triangle"
    if engine_name == "sv3d_p":
        assert video.record["elevations"] == camera_path_angles("wave", 5, 10.0)[0]
