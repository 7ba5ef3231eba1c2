"""Image + prompt to video and video to video with the UNet3D family (noisy seeding)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from diffusers import VideoToVideoSDPipeline
from PIL import Image
from typer.testing import CliRunner

from videogen.catalog import CATALOG, ModelSpec
from videogen.cli import app
from videogen.families.base import Inputs
from videogen.families.unet3d import UNet3DEngine
from videogen.media import write_mp4
from videogen.request import Request, resolve_request
from videogen.sampling.progress import Reporter
from videogen.sampling.seeds import cpu_generator

runner = CliRunner()
PROMPT = "the knight raises his sword"


def synthetic_frames(count: int, height: int = 64, width: int = 64) -> np.ndarray:
    """Smooth gradients with a square moving right: uint8 (count, height, width, 3)."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for k in range(count):
        frame = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 90.0)], axis=-1)
        frame[20:36, 8 + 4 * k : 24 + 4 * k] = (240, 40, 40)
        frames.append(frame.astype(np.uint8))
    return np.stack(frames)


@pytest.fixture(scope="module")
def engine(tiny_unet3d) -> UNet3DEngine:
    return UNet3DEngine.load(tiny_unet3d, torch.device("cpu"), torch.float32, None)


def _request(tiny_unet3d: Path, **fields) -> Request:
    base = {
        "prompt": PROMPT,
        "model": str(tiny_unet3d),
        "num_frames": 4,
        "height": 64,
        "width": 64,
        "steps": 5,
    }
    return resolve_request(Request(**{**base, **fields}))[0]


def test_video_to_video_matches_the_reference_pipeline(engine, tiny_unet3d) -> None:
    frames = synthetic_frames(4)
    reference = VideoToVideoSDPipeline.from_pretrained(tiny_unet3d)
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        PROMPT,
        video=[Image.fromarray(f) for f in frames],
        strength=0.6,
        num_inference_steps=5,
        guidance_scale=7.5,
        negative_prompt="blurry",
        generator=torch.Generator("cpu").manual_seed(3),
        output_type="np",
    ).frames[0]
    request = _request(tiny_unet3d, video="clip.mp4", strength=0.6, guidance=7.5, negative_prompt="blurry")
    (video,) = engine.generate(request, [3], Reporter(None, None, 1), Inputs(video=frames))
    assert video.frames.shape == expected.shape == (4, 64, 64, 3)
    assert np.abs(video.frames - expected).max() < 1e-4
    assert video.record["denoising_steps"] == 3  # int(5 * 0.6) steps of 5


def _start_latents(engine, tiny_unet3d, **fields):
    request = _request(tiny_unet3d, image="knight.png", **fields)
    scheduler = engine_scheduler(engine, request)
    image = Image.fromarray(synthetic_frames(1)[0])
    return engine.seed_latents(request, Inputs(image=image), scheduler, cpu_generator(0)), scheduler, request


def engine_scheduler(engine, request):
    from videogen.sampling.schedulers import make_scheduler

    scheduler = make_scheduler(request.scheduler, engine.scheduler_config)
    scheduler.set_timesteps(request.steps)
    return scheduler


def test_shared_noise_is_equal_across_frames_and_independent_is_not(engine, tiny_unet3d) -> None:
    (shared, _, _), _, _ = _start_latents(engine, tiny_unet3d, noise_mode="shared")
    (independent, _, _), _, _ = _start_latents(engine, tiny_unet3d, noise_mode="independent")
    for frame in range(1, 4):
        torch.testing.assert_close(shared[:, :, frame], shared[:, :, 0], rtol=0, atol=0)
        assert (independent[:, :, frame] - independent[:, :, 0]).abs().max() > 0.1


def test_mixed_noise_shares_the_requested_part_of_the_variance() -> None:
    from videogen.sampling.noisy_seeding import seeding_noise

    noise = seeding_noise((2, 4, 64, 64), "mixed", 0.3, cpu_generator(1), torch.device("cpu"), torch.float32)
    a, b = noise[0].flatten(), noise[1].flatten()
    assert abs(a.var().item() - 1) < 0.05
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item() - 0.3) < 0.05


def test_pinned_first_frame_ends_as_the_clean_image_latent(engine, tiny_unet3d) -> None:
    (latents, timesteps, pin), scheduler, request = _start_latents(engine, tiny_unet3d, pin_first_frame=True)
    embeds = engine.encode_prompt(PROMPT, None, False)
    final, _ = engine.denoise(latents, timesteps, scheduler, embeds, request, lambda *_: None, pin)
    torch.testing.assert_close(final[0, :, 0], pin.clean, rtol=0, atol=0)
    assert (final[0, :, 1] - pin.clean).abs().max() > 1e-3


def test_strength_near_zero_returns_the_vae_round_trip(engine, tiny_unet3d) -> None:
    image = synthetic_frames(1)[0]
    request = _request(tiny_unet3d, image="knight.png", strength=0.01, num_frames=2)
    (video,) = engine.generate(request, [5], Reporter(None, None, 1), Inputs(image=Image.fromarray(image)))
    latent = engine.encode_frames(image[None], cpu_generator(5))
    round_trip = engine.decode(latent.permute(1, 0, 2, 3)[None], 8)[0][0, 0]
    assert video.record["denoising_steps"] == 0
    np.testing.assert_allclose(video.frames[0], round_trip, atol=1e-5)
    np.testing.assert_allclose(video.frames[1], round_trip, atol=1e-5)


def _cli(*args: str) -> tuple[int, str, dict | None]:
    result = runner.invoke(app, ["generate", PROMPT, "--json", "--device", "cpu", *args])
    summary = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, result.stderr, summary


def test_image_run_records_the_input_in_the_sidecar(tiny_unet3d, tmp_path) -> None:
    image_path = tmp_path / "knight.png"
    Image.fromarray(synthetic_frames(1, 80, 120)[0]).save(image_path)
    code, err, summary = _cli(
        "--model", str(tiny_unet3d), "--image", str(image_path), "--strength", "0.7", "--noise-mode", "mixed",
        "--noise-mix", "0.5", "--pin-first-frame", "--fit", "pad", "--num-frames", "3", "--height", "64",
        "--width", "64", "--steps", "2", "--seed", "1", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, err
    sidecar = json.loads(Path(summary["videos"][0]["files"]["sidecar"]).read_text())
    digest = hashlib.sha256(image_path.read_bytes()).hexdigest()
    assert sidecar["inputs"] == {"image": {"name": "knight.png", "sha256": digest}}
    assert sidecar["request"]["strength"] == 0.7 and sidecar["request"]["noise_mode"] == "mixed"
    assert sidecar["request"]["fit"] == "pad" and sidecar["request"]["pin_first_frame"] is True


def test_video_without_num_frames_takes_every_frame(tiny_unet3d, tmp_path) -> None:
    clip = tmp_path / "clip.mp4"
    write_mp4(synthetic_frames(6, 48, 64), clip, fps=8)
    code, err, summary = _cli(
        "--model", str(tiny_unet3d), "--video", str(clip), "--strength", "0.5", "--steps", "2",
        "--height", "48", "--width", "64", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, err
    with av.open(summary["videos"][0]["files"]["mp4"]) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6


@pytest.fixture(scope="module")
def tiny_upscaler(tiny_unet3d, tmp_path_factory) -> Path:
    """The tiny model again, with a larger default size (96x96) like zeroscope XL over 576w."""
    folder = tmp_path_factory.mktemp("models") / "tiny-upscaler"
    shutil.copytree(tiny_unet3d, folder)
    config_path = folder / "unet" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "sample_size": 12}))
    return folder


def test_upscale_chain_writes_two_videos_at_the_two_sizes(tiny_unet3d, tiny_upscaler, tmp_path) -> None:
    code, err, summary = _cli(
        "--model", str(tiny_unet3d), "--upscale", str(tiny_upscaler), "--upscale-strength", "0.65",
        "--num-frames", "3", "--height", "48", "--width", "64", "--steps", "2", "--seed", "2",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    first, second = summary["videos"]
    assert (first["model"], second["model"]) == ("tiny-unet3d", "tiny-upscaler")
    sizes = []
    for video in (first, second):
        with av.open(video["files"]["mp4"]) as container:
            stream = container.streams.video[0]
            sizes.append((stream.codec_context.width, stream.codec_context.height))
    assert sizes == [(64, 48), (96, 96)]
    sidecar = json.loads(Path(second["files"]["sidecar"]).read_text())
    assert sidecar["upscaled_from"]["model"] == "tiny-unet3d"
    assert sidecar["request"]["strength"] == 0.65 and sidecar["seed"] == 2


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    made = {"empty": tmp_path / "empty.png", "text": tmp_path / "notes.png", "novideo": tmp_path / "none"}
    made["empty"].write_bytes(b"")
    made["text"].write_text("this is not an image")
    made["novideo"].mkdir()
    made["noframes"] = tmp_path / "noframes.mp4"
    with av.open(str(made["noframes"]), "w") as container:  # a valid mp4 with not one frame in it
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
        container.mux(stream.encode(None))
    made["big"] = tmp_path / "big.png"
    Image.new("1", (12000, 12000)).save(made["big"])
    made["ok"] = tmp_path / "ok.png"
    Image.fromarray(synthetic_frames(1)[0]).save(made["ok"])
    return made


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--image", "{empty}"], "empty.png"),
        (["--image", "{text}"], "notes.png"),
        (["--image", "{missing}"], "missing.png"),
        (["--video", "{novideo}"], "none"),
        (["--video", "{noframes}"], "no video stream in"),
        (["--image", "{ok}", "--strength", "0"], "strength: 0.0 is not allowed; must be > 0"),
        (["--image", "{ok}", "--strength", "1.5"], "strength: 1.5 is not allowed; must be <= 1"),
        (["--image", "{ok}", "--video", "{ok}"], "give either image or video, not both"),
        (["--image", "{big}"], "144000000"),
    ],
)
def test_input_errors_are_clear(tiny_unet3d, files, tmp_path, args, expected) -> None:
    paths = {**{k: str(v) for k, v in files.items()}, "missing": str(tmp_path / "missing.png")}
    code, err, _ = _cli(
        "--model", str(tiny_unet3d), "--out", str(tmp_path / "o"), *[a.format(**paths) for a in args]
    )
    assert code == 2, err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_image_for_a_model_that_cannot_take_one(monkeypatch, files) -> None:
    spec = CATALOG["modelscope-t2v"]
    text_only = ModelSpec(**{**spec.__dict__, "id": "text-only", "tasks": ("t2v",)})
    monkeypatch.setitem(CATALOG, "text-only", text_only)
    code, err, _ = _cli("--model", "text-only", "--image", str(files["ok"]))
    assert code == 2
    assert "image: " in err and "text-only cannot take an image (it does t2v)" in err
