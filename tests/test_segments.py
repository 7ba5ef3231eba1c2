"""Long videos: segments chained from the last frames, colour held across them, streaming memory,
prompts per segment, extending a video this project did not write, and what cannot be chained."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from videogen.cli import app
from videogen.errors import FieldError
from videogen.families.base import GeneratedVideo, Inputs
from videogen.generate import generate
from videogen.media.frames import read_video
from videogen.request import parse_request
from videogen.resolve import resolve
from videogen.sampling.progress import Reporter
from videogen.segments import Chain, Joiner, plan

SMALL = ["--num-frames", "8", "--height", "32", "--width", "32", "--steps", "2", "--device", "cpu"]


class DriftingEngine:
    """Continues its input (the clip's first frame, or the image) with its colours shifted: every
    segment a little redder than what it continues, as a real chain's colours wander from segment to
    segment. From nothing: a grey gradient."""

    def __init__(self, frames: int = 8, size: int = 16, drift: float = 0.04) -> None:
        self.frames, self.size, self.drift, self.calls = frames, size, drift, []

    def generate(self, request, seeds, report: Reporter, inputs: Inputs) -> list[GeneratedVideo]:
        self.calls.append((request.prompt, seeds[0], request.strength))
        if inputs.video is not None:
            start = inputs.video[0].astype(np.float32) / 255
        elif inputs.image is not None:
            start = np.asarray(inputs.image, dtype=np.float32) / 255
        else:
            ramp = np.linspace(0.3, 0.7, self.size, dtype=np.float32)
            start = np.repeat(np.repeat(ramp[None, :, None], self.size, axis=0), 3, axis=2)
            return [GeneratedVideo(frames=np.stack([start] * self.frames), seed=seeds[0])]
        shift = np.array([self.drift, -self.drift / 2, -self.drift / 2], np.float32)
        frames = np.stack([np.clip(start + shift, 0, 1)] * self.frames)
        return [GeneratedVideo(frames=frames, seed=seeds[0])]


def make_chain(engine: DriftingEngine, **fields) -> Chain:
    """A chain of ``engine``'s segments at its size, with ModelScope's fields (continued by video)."""
    size = {"num_frames": engine.frames, "height": engine.size, "width": engine.size}
    resolved = resolve(
        parse_request({"prompt": "a fox", "model": "modelscope-t2v", "seed": 3, **size, **fields})
    )
    report = Reporter(None, None, resolved.request.segments)
    return Chain(engine, resolved.request, report, plan(resolved.request, resolved.spec), Inputs())


def chain_of(
    engine, segments: int, colour_match: bool, overlap: int = 2, **fields
) -> tuple[Chain, np.ndarray]:
    chain = make_chain(engine, segments=segments, overlap=overlap, colour_match=colour_match, **fields)
    return chain, np.stack(list(chain.frames()))


def test_segments_join_at_the_shared_frames_with_a_seam_the_size_of_a_step() -> None:
    chain, frames = chain_of(DriftingEngine(drift=0.0), segments=3, colour_match=False)
    assert len(frames) == 8 + 2 * (8 - 2)
    assert [segment["frames"] for segment in chain.segments] == [[0, 8], [6, 14], [12, 20]]
    assert [segment["seed"] for segment in chain.segments] == [3, 4, 5]


def test_the_joiner_hands_over_from_the_old_segment_to_the_new_across_the_overlap() -> None:
    old = np.zeros((6, 4, 4, 3), np.float32)
    new = np.ones((6, 4, 4, 3), np.float32)
    joiner = Joiner(overlap=3, colour_match=False)
    out = np.stack([*joiner.first(iter(old)), *joiner.add(new), *joiner.finish()])
    assert len(out) == 9
    np.testing.assert_allclose(out[3:6, 0, 0, 0], [0.0, 0.5, 1.0])  # first shared frame: the old segment's
    np.testing.assert_array_equal(out[:3], 0) and np.testing.assert_array_equal(out[6:], 1)


def segment_means(chain: Chain, frames: np.ndarray) -> list[np.ndarray]:
    return [frames[start:end].mean(axis=(0, 1, 2)) for start, end in (s["frames"] for s in chain.segments)]


def test_colour_matching_holds_segment_four_to_segment_one_where_without_it_the_colour_drifts() -> None:
    drifting, drifted = chain_of(DriftingEngine(), segments=4, colour_match=False)
    held, kept = chain_of(DriftingEngine(), segments=4, colour_match=True)
    loose = segment_means(drifting, drifted)
    matched = segment_means(held, kept)
    assert np.abs(loose[3] - loose[0]).max() > 0.06  # red climbs segment after segment
    assert np.abs(matched[3] - matched[0]).max() < 0.02


def test_peak_memory_does_not_grow_with_the_number_of_segments() -> None:
    def peak(segments: int) -> int:
        chain = make_chain(DriftingEngine(frames=16, size=128), segments=segments)
        tracemalloc.start()
        written = sum(1 for _ in chain.frames())  # each frame handed on and dropped, as the encoder does
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert written == 16 + (segments - 1) * 12
        return top

    one, four, eight = peak(1), peak(4), peak(8)
    segment = 16 * 128 * 128 * 3 * 4  # one segment's float frames
    assert eight <= four * 1.02, (four, eight)  # no growth with length (a list of the frames: 2x)
    # a continuation adds its input clip and the shared frames, less than a segment
    assert four - one < segment, (one, four)


def test_prompts_per_segment_and_the_continuation_strength_reach_each_segment() -> None:
    engine = DriftingEngine()
    chain, _ = chain_of(
        engine, segments=3, colour_match=True, segment_prompts=["a", "b", "c"], segment_strength=0.6
    )
    assert engine.calls == [("a", 3, None), ("b", 4, 0.6), ("c", 5, 0.6)]
    assert [segment["prompt"] for segment in chain.segments] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"model": "sv3d-u", "image": "x.png", "num_frames": 21}, "segments", "orbit"),
        ({"formats": ["gif"]}, "formats", "mp4 only"),
        ({"num_videos": 2}, "num_videos", "one at a time"),
        ({"overlap": 16}, "overlap", "fewer than the 16 frames"),
        ({"segment_prompts": ["a", "b"]}, "segment_prompts", "one prompt per segment: 3"),
    ],
)
def test_what_cannot_be_chained_is_refused_naming_the_field(fields, field, says, tmp_path) -> None:
    if "image" in fields:
        Image.new("RGB", (64, 64)).save(tmp_path / "x.png")
        fields = {**fields, "image": str(tmp_path / "x.png")}
    request = parse_request({"prompt": "a fox", "num_frames": 16, "segments": 3, **fields})
    with pytest.raises(FieldError) as caught:
        resolve(request)  # at submit, as the server's admission resolves
    assert caught.value.field == field and says in str(caught.value)


def test_segment_fields_without_segments_are_refused() -> None:
    with pytest.raises(FieldError, match="overlap"):
        resolve(parse_request({"prompt": "a fox", "overlap": 3}))


def frames_of(path: Path) -> np.ndarray:
    return read_video(path)[0]


def test_a_chain_on_tiny_weights_is_one_mp4_whose_sidecar_lists_the_segments(tiny_unet3d, tmp_path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "a fox walks",
            "--model",
            str(tiny_unet3d),
            *SMALL,
            "--segments",
            "3",
            "--overlap",
            "2",
            "--segment-prompt",
            "snow",
            "--segment-prompt",
            "running",
            "--segment-prompt",
            "a leap",
            "--seed",
            "7",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    video = json.loads(result.stdout)["videos"][0]
    frames = frames_of(Path(video["files"]["mp4"]))
    assert len(frames) == 8 + 2 * 6
    sidecar = json.loads(Path(video["files"]["sidecar"]).read_text())
    segments = sidecar["record"]["segments"]
    assert [(s["seed"], s["prompt"], s["frames"]) for s in segments] == [
        (7, "snow", [0, 8]),
        (8, "running", [6, 14]),
        (9, "a leap", [12, 20]),
    ]
    # the seams are no jump: a frame where a segment starts is as close to the one before as any two
    steps = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    seams = [start - 1 for start in (6, 12)]
    assert max(steps[seams]) <= 2 * np.median(steps) + 2


def test_extend_continues_a_video_this_project_did_not_write(tiny_unet3d, tmp_path) -> None:
    source = tmp_path / "theirs.mp4"
    with av.open(str(source), "w") as container:  # not our writer: another encoder's settings
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 48, "yuv420p"
        for index in range(12):
            image = np.zeros((48, 48, 3), np.uint8)
            image[:, : 4 * (index + 1)] = (200, 120, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    result = CliRunner().invoke(
        app,
        [
            "extend",
            str(source),
            "--prompt",
            "the bar grows",
            "--model",
            str(tiny_unet3d),
            *SMALL,
            "--segments",
            "2",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "out"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    video = json.loads(result.stdout)["videos"][0]
    frames = frames_of(Path(video["files"]["mp4"]))
    assert len(frames) == 12 + 2 * (8 - 4)
    original = frames_of(source)
    # the source's frames lead the video, fitted to 32x32 (the bar's edge moves right frame by frame)
    edges = [int((frame[16, :, 0] > 100).sum()) for frame in frames[:8]]
    assert edges == sorted(edges) and edges[0] < edges[-1] and len(original) == 12
    segments = json.loads(Path(video["files"]["sidecar"]).read_text())["record"]["segments"]
    assert segments[0] == {"index": 0, "extended": "theirs.mp4", "frames": [0, 12]}
    assert [s["frames"] for s in segments[1:]] == [[8, 16], [12, 20]]


def test_an_image_to_video_chain_continues_from_the_frame_where_the_overlap_starts(
    tiny_svd, tmp_path
) -> None:
    image = tmp_path / "car.png"
    Image.new("RGB", (32, 32), (30, 160, 90)).save(image)
    fields = {"model": str(tiny_svd), "image": str(image), "num_frames": 4, "height": 32, "width": 32}
    resolved = resolve(
        parse_request({**fields, "steps": 2, "segments": 3, "seed": 2, "out_dir": str(tmp_path)})
    )
    chain_plan = plan(resolved.request, resolved.spec)
    assert (chain_plan.by, chain_plan.overlap) == ("image", 1)
    result = generate(resolved.request)
    frames = frames_of(result.videos[0].files["mp4"])
    assert len(frames) == 4 + 2 * 3
    record = json.loads(result.videos[0].files["sidecar"].read_text())["record"]
    assert [s["frames"] for s in record["segments"]] == [[0, 4], [3, 7], [6, 10]]
    assert record["continues_by"] == "image"


def test_interpolate_doubles_the_frames_and_the_playback_rate_unless_fps_is_given(
    tiny_unet3d, tmp_path
) -> None:
    def run(*extra: str) -> tuple[int, float]:
        result = CliRunner().invoke(
            app,
            [
                "generate",
                "a fox",
                "--model",
                str(tiny_unet3d),
                *SMALL,
                "--seed",
                "1",
                "--interpolate",
                "2",
                "--out",
                str(tmp_path),
                "--json",
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
        frames, fps = read_video(Path(json.loads(result.stdout)["videos"][0]["files"]["mp4"]))
        return len(frames), fps

    assert run() == (15, 16.0)  # ModelScope plays at 8 fps
    assert run("--fps", "10") == (15, 10.0)
    chained = run("--segments", "2", "--overlap", "2")
    assert chained == ((8 + 6 - 1) * 2 + 1, 16.0)


def test_an_anchor_swaps_only_the_identity_image_of_an_image_to_video_segment(tiny_svd) -> None:
    from videogen.engines import load_engine

    engine = load_engine("svd", tiny_svd, torch.device("cpu"), torch.float32, None)
    fields = {
        "model": str(tiny_svd),
        "image": "x.png",
        "num_frames": 4,
        "height": 32,
        "width": 32,
        "steps": 2,
    }
    request = resolve(parse_request(fields), read_video=False).request
    original, frame = Image.new("RGB", (32, 32), (220, 30, 30)), Image.new("RGB", (32, 32), (30, 200, 60))

    def run(inputs: Inputs) -> np.ndarray:
        (video,) = engine.generate(request, [1], Reporter(None, None, 1), inputs)
        return video.frames

    plain = run(Inputs(image=frame))
    np.testing.assert_array_equal(run(Inputs(image=frame, anchor=frame)), plain)
    assert np.abs(run(Inputs(image=frame, anchor=original)) - plain).max() > 1e-3


def test_travelling_hands_each_frame_its_embedding_and_leaves_the_negative_branch(tiny_unet3d) -> None:
    from videogen.engines import load_engine
    from videogen.sampling.prompt_travel import frame_embeddings, travelling

    engine = load_engine("unet3d", tiny_unet3d, torch.device("cpu"), torch.float32, None)
    embeds = engine.encode_prompt("a fox", "blurry", guided=True)
    other = engine.encode_prompt("a red car", None, guided=False)[0]
    latents = torch.randn(2, 4, 6, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = engine.unet(latents, 500, encoder_hidden_states=embeds).sample
        with travelling(engine.unet, frame_embeddings(embeds[1], embeds[1], 6, 3)):
            same = engine.unet(latents, 500, encoder_hidden_states=embeds).sample
        with travelling(engine.unet, frame_embeddings(other, embeds[1], 6, 3)):
            travelled = engine.unet(latents, 500, encoder_hidden_states=embeds).sample
        start = engine.unet(latents, 500, encoder_hidden_states=torch.stack([embeds[0], other])).sample
    torch.testing.assert_close(same, plain, rtol=0, atol=1e-5)
    torch.testing.assert_close(travelled[0], plain[0], rtol=0, atol=1e-5)  # the negative branch as it was
    # the prompt branch's first frame is the old prompt's (frames 0-2 blend, 3-5 are the new prompt's)
    first_old = (travelled[1, :, 0] - start[1, :, 0]).abs().mean()
    first_new = (travelled[1, :, 0] - plain[1, :, 0]).abs().mean()
    last_new = (travelled[1, :, 5] - plain[1, :, 5]).abs().mean()
    last_old = (travelled[1, :, 5] - start[1, :, 5]).abs().mean()
    assert first_old < first_new and last_new < last_old


def test_a_chained_segment_whose_prompt_changes_travels_from_the_previous_prompt() -> None:
    engine = DriftingEngine()
    inputs: list[Inputs] = []
    generate_once = engine.generate

    def spy(request, seeds, report, given: Inputs):
        inputs.append(given)
        return generate_once(request, seeds, report, given)

    engine.generate = spy
    chain, _ = chain_of(engine, segments=3, colour_match=False, overlap=3, segment_prompts=["a", "b", "b"])
    assert [(i.previous_prompt, i.travel_frames) for i in inputs] == [(None, 0), ("a", 3), ("b", 3)]
    assert [segment.get("prompt_travel") for segment in chain.segments] == [
        None,
        {"from": "a", "frames": 3},
        None,
    ]
