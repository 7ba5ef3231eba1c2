"""Quality metrics on synthetic videos with known answers, and the learned ones on tiny random encoders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from videogen.compare.commands import evaluate_command
from videogen.media import write_mp4
from videogen.metrics import (
    LEARNED,
    METRICS,
    EncoderSources,
    Evaluator,
    consistency,
    dynamic_degree,
    frame_ssim,
    input_fidelity,
    motion_smoothness,
    psnr,
    ssim,
    temporal_flickering,
)
from videogen.metrics.flow import frame_flows
from videogen.metrics.tiny import build_tiny_clip, build_tiny_dino, write_tiny_aesthetic_head

SIZE = 64
OFFLINE = EncoderSources(device="cpu")  # the autouse fixture empties the Hub cache: nothing loads


def moving_square(step: int, frames: int = 8, side: int = 20, seed: int = 0) -> np.ndarray:
    """A noise-textured square moving ``step`` px right per frame over a static noise background."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
    texture = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    video = np.repeat(background[None], frames, axis=0)
    top = (SIZE - side) // 2
    for index in range(frames):
        left = 2 + index * step
        video[index, top : top + side, left : left + side] = texture
    return video


def drifting_pattern(frames: int = 12) -> np.ndarray:
    """Smooth colour waves sliding a few pixels per frame: neighbouring frames look alike."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    video = []
    for t in range(frames):
        red = 128 + 100 * np.sin((x + 4 * t) / 9.0)
        green = 128 + 100 * np.cos((y - 3 * t) / 7.0)
        blue = 128 + 80 * np.sin((x + y + 5 * t) / 13.0)
        video.append(np.stack([red, green, blue], axis=-1).astype(np.uint8))
    return np.stack(video)


def shuffled(video: np.ndarray) -> np.ndarray:
    return video[np.random.default_rng(0).permutation(len(video))]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> EncoderSources:
    folder = tmp_path_factory.mktemp("encoders")
    clip = build_tiny_clip(folder / "clip")
    return EncoderSources(
        clip=str(clip),
        dino=str(build_tiny_dino(folder / "dino")),
        aesthetic_clip=str(clip),
        aesthetic_head=str(write_tiny_aesthetic_head(folder / "head.pth", dim=16)),
        device="cpu",
    )


def test_static_video_has_no_flicker_and_no_motion() -> None:
    still = np.repeat(moving_square(0)[:1], 8, axis=0)
    results = Evaluator(OFFLINE).evaluate(still, fps=8.0)
    assert results["temporal_flickering"].value == 1.0
    assert results["dynamic_degree"].value == 0.0
    assert results["frame_ssim"].value == pytest.approx(1.0)
    assert results["flow_magnitude"].value < 0.05
    assert results["motion_smoothness"].value == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("step", [1, 2, 4, 6])
def test_flow_magnitude_of_a_moving_square_is_its_speed(step: int) -> None:
    results = Evaluator(OFFLINE).evaluate(moving_square(step), fps=8.0)
    assert results["flow_magnitude"].value == pytest.approx(step, rel=0.1)
    assert len(results["flow_magnitude"].details["per_pair"]) == 7
    # VBench's threshold at 64 px is 6 * 64 / 256 = 1.5 px per frame.
    assert results["dynamic_degree"].value == (1.0 if step > 1.5 else 0.0)
    assert results["dynamic_degree"].details["threshold_px"] == 1.5


def test_dynamic_degree_thins_fast_videos_to_about_8_fps() -> None:
    video = moving_square(1, frames=24)
    result = dynamic_degree(video, 24.0, frame_flows(video))
    # Every 3rd frame: the square moves 3 px between the frames compared, over the 1.5 px threshold.
    assert result.details["frame_interval"] == 3 and result.details["pairs_needed"] == 2
    assert result.value == 1.0


def test_identical_frames_are_perfectly_consistent(encoders: EncoderSources) -> None:
    frame = drifting_pattern()[0]
    video = np.repeat(frame[None], 6, axis=0)
    assert consistency(np.repeat(np.random.default_rng(1).normal(size=(1, 32)), 6, axis=0)) == 1.0
    results = Evaluator(encoders).evaluate(video, fps=8.0)
    for name in ("subject_consistency", "background_consistency", "frame_ssim", "temporal_flickering"):
        assert results[name].value == pytest.approx(1.0, abs=1e-6), name


def test_shuffled_video_is_less_consistent_than_the_ordered_one(encoders: EncoderSources) -> None:
    video = drifting_pattern()
    evaluator = Evaluator(encoders)
    ordered, mixed = evaluator.evaluate(video, 8.0), evaluator.evaluate(shuffled(video), 8.0)
    for name in ("subject_consistency", "background_consistency", "frame_ssim", "temporal_flickering",
                 "motion_smoothness"):  # fmt: skip
        assert mixed[name].value < ordered[name].value, name
    pixels = video.reshape(len(video), -1).astype(np.float64)
    assert consistency(shuffled(pixels)) < consistency(pixels)


def test_consistency_clips_negative_similarities_at_zero() -> None:
    features = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    # frame 2: both cosines -1 -> 0; frame 3: to frame 2 -1 -> 0, to frame 1 +1 -> mean (0 + 0.5) / 2
    assert consistency(features) == pytest.approx(0.25)


def test_motion_that_reverses_every_frame_is_not_smooth() -> None:
    steady = moving_square(3)
    jitter = steady[[0, 1] * 4]
    assert motion_smoothness(frame_flows(steady)).value > 0.85
    assert motion_smoothness(frame_flows(jitter)).value < 0.4


def test_pixel_metrics_follow_their_formulas() -> None:
    rng = np.random.default_rng(2)
    first = rng.integers(0, 200, (SIZE, SIZE, 3), dtype=np.uint8)
    video = np.stack([first, first + 51])  # every pixel changes by 51 levels
    assert temporal_flickering(video).value == pytest.approx((255 - 51) / 255)
    assert psnr(first, first + 51) == pytest.approx(10 * np.log10(255**2 / 51**2))
    assert psnr(first, first) == 100.0
    assert ssim(first, first) == pytest.approx(1.0)
    assert temporal_flickering(video[:1]).skipped == "needs at least 2 frames"
    assert frame_ssim(video[:1]).value is None


def test_first_frame_fidelity_to_the_input_image() -> None:
    video = drifting_pattern(4)
    same = {r.name: r.value for r in input_fidelity(video, video[0])}
    assert same == {"first_frame_ssim": pytest.approx(1.0), "first_frame_psnr": 100.0}
    noisy = video[0].astype(np.int16) + np.random.default_rng(0).integers(-40, 40, video[0].shape)
    worse = {r.name: r.value for r in input_fidelity(video, np.clip(noisy, 0, 255).astype(np.uint8))}
    assert worse["first_frame_ssim"] < 0.9 and worse["first_frame_psnr"] < 30
    bigger = np.kron(video[0], np.ones((2, 2, 1), dtype=np.uint8))  # resized to the frame before comparing
    assert input_fidelity(video, bigger)[0].value > 0.95


def test_clip_metrics_on_tiny_random_weights_are_in_range(encoders: EncoderSources) -> None:
    video = drifting_pattern(5)
    results = Evaluator(encoders).evaluate(video, 8.0, prompt="a panda eating bamboo", image=video[0])
    assert all(results[name].skipped is None for name in METRICS), results
    assert -1.0 <= results["clip_text_alignment"].value <= 1.0
    assert len(results["clip_text_alignment"].details["per_frame"]) == 5
    assert -1.0 <= results["clip_image_similarity"].value <= 1.0
    for name in ("subject_consistency", "background_consistency"):
        assert 0.0 <= results[name].value <= 1.0
    assert np.isfinite(results["aesthetic_quality"].value)
    json.dumps({name: result.to_json() for name, result in results.items()})  # plain JSON types


def test_missing_encoders_are_skipped_with_the_reason_never_zero() -> None:
    video = drifting_pattern(4)
    results = Evaluator(OFFLINE).evaluate(video, 8.0, prompt="a cat", image=video[0])
    for name in LEARNED:
        assert results[name].value is None and results[name].skipped, name
    assert results["clip_text_alignment"].skipped == (
        "CLIP weights not found in the Hugging Face cache (openai/clip-vit-base-patch32); "
        "pass --clip-model DIR"
    )
    assert "--dino-model DIR" in results["subject_consistency"].skipped
    assert "--aesthetic-head FILE" in results["aesthetic_quality"].skipped
    off = Evaluator(EncoderSources(learned=False)).evaluate(video, 8.0)
    assert {off[name].skipped for name in LEARNED} == {"learned metrics turned off"}


def test_inputs_a_run_lacks_are_skipped_with_the_reason(encoders: EncoderSources) -> None:
    results = Evaluator(encoders).evaluate(drifting_pattern(4), 8.0)
    assert results["clip_text_alignment"].skipped == "no prompt"
    for name in ("clip_image_similarity", "first_frame_ssim", "first_frame_psnr"):
        assert results[name].skipped == "not image-conditioned (no input image)"


def test_aesthetic_head_that_does_not_fit_the_clip_model_is_skipped(
    encoders: EncoderSources, tmp_path: Path
) -> None:
    wrong = write_tiny_aesthetic_head(tmp_path / "head768.pth", dim=768)
    sources = EncoderSources(clip=encoders.clip, aesthetic_clip=encoders.clip, aesthetic_head=str(wrong))
    result = Evaluator(sources).evaluate(drifting_pattern(3), 8.0)["aesthetic_quality"]
    assert result.value is None and "768-dim" in result.skipped and "ViT-L/14" in result.skipped
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    junk = EncoderSources(aesthetic_clip=encoders.clip, aesthetic_head=str(tmp_path / "junk.pth"))
    assert (
        "cannot read aesthetic head"
        in Evaluator(junk).evaluate(drifting_pattern(3), 8.0)["aesthetic_quality"].skipped
    )


def test_a_cached_hub_encoder_loads_without_the_network(isolated_hub: Path, tmp_path: Path) -> None:
    """``--clip-model`` left at its default finds the weights in the Hugging Face cache."""
    snapshot = isolated_hub / "models--openai--clip-vit-base-patch32" / "snapshots" / ("0" * 40)
    build_tiny_clip(snapshot)
    (isolated_hub / "models--openai--clip-vit-base-patch32" / "refs").mkdir()
    (isolated_hub / "models--openai--clip-vit-base-patch32" / "refs" / "main").write_text("0" * 40)
    result = Evaluator(EncoderSources(device="cpu")).evaluate(drifting_pattern(3), 8.0, prompt="a dog")
    assert result["clip_text_alignment"].value is not None


def test_evaluate_command_prints_json_with_prompt_from_the_sidecar(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_mp4(moving_square(3), video, 8.0)
    (tmp_path / "clip.json").write_text(json.dumps({"request": {"prompt": "a square"}, "outputs": {}}))
    app = typer.Typer()
    app.command()(evaluate_command)
    result = CliRunner().invoke(app, [str(video), "--json", "--no-learned-metrics"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["prompt"] == "a square" and data["frames"] == 8 and data["fps"] == 8.0
    assert data["metrics"]["flow_magnitude"]["value"] == pytest.approx(3, rel=0.15)
    assert data["metrics"]["clip_text_alignment"]["skipped"] == "learned metrics turned off"
    missing = CliRunner().invoke(app, [str(tmp_path / "nope.mp4")])
    assert missing.exit_code == 2 and "error:" in missing.stderr
