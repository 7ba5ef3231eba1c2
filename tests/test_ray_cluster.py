"""Generations on a local Ray cluster (2 CPU actors): same frames as here, progress, cancel, a killed
actor, dispatch, a folder and a comparison fanned out, and the files that travel with a request."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from videogen.batch import generate_batch
from videogen.cluster.actor import ActorFacts
from videogen.cluster.cli_options import cluster_options
from videogen.cluster.connection import ClusterOptions
from videogen.cluster.pool import Member, WorkerPool, choose, needed_bytes
from videogen.cluster.shipping import PackedResult, pack_request, unpack_request, write_outputs
from videogen.compare import CompareSettings, run_compare
from videogen.errors import Cancelled, FieldError, UserError
from videogen.generate import generate
from videogen.media.frames import read_video
from videogen.metrics import EncoderSources
from videogen.request import parse_request
from videogen.sampling.progress import WithPreviews

SMALL = {"num_frames": 4, "height": 32, "width": 32, "steps": 3, "device": "cpu", "seed": 4}
GIB = 2**30


@pytest.fixture(scope="module")
def pool(ray_cluster) -> WorkerPool:
    """Two actors of one CPU each; the runs here that they are compared with use one thread too (a
    different thread count sums in another order, which the tiny random SVD amplifies)."""
    pool = WorkerPool(workers=2, cpus_per_worker=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield pool
    torch.set_num_threads(threads)
    pool.close()


def frames(path: Path) -> np.ndarray:
    return read_video(path)[0]


def assert_same_video(one: Path, other: Path) -> None:
    """Two mp4s of the same request, one made on an actor and one here: the same frames up to the
    float summation order. Another process may lay its tensors out at other alignments, and oneDNN then
    sums in another order; the tiny random SVD amplifies that, and the encoder can round a pixel the
    other way. Another image or seed changes the tiny SVD's frames by 14-19 levels on average."""
    difference = np.abs(frames(one).astype(np.int16) - frames(other))
    assert difference.mean() < 0.5, f"mean difference {difference.mean():.2f} of 255"


def test_a_run_on_an_actor_makes_the_frames_a_run_here_makes_and_streams_its_progress(
    pool, tiny_unet3d, tmp_path
) -> None:
    request = parse_request(
        {**SMALL, "prompt": "a panda", "model": str(tiny_unet3d), "out_dir": str(tmp_path / "a")}
    )
    events = []
    remote = pool.run(request, WithPreviews(events.append, every=1))
    local = generate(request.model_copy(update={"out_dir": str(tmp_path / "b")}))
    assert_same_video(remote.videos[0].files["mp4"], local.videos[0].files["mp4"])
    steps = [event.step for event in events if event.stage == "denoise" and event.step]
    assert steps == [1, 2, 3] and all(
        event.preview for event in events if event.stage == "denoise" and event.step
    )
    assert remote.videos[0].files["mp4"].parent == tmp_path / "a"
    sidecar = json.loads(remote.videos[0].files["sidecar"].read_text())
    assert sidecar["request"]["out_dir"] == str(tmp_path / "a")  # not the actor's temporary folder


def test_an_image_travels_to_the_actor_and_the_sidecar_names_the_original(pool, tiny_svd, tmp_path) -> None:
    image = tmp_path / "still life.png"
    Image.new("RGB", (40, 40), (200, 30, 30)).save(image)
    fields = {**SMALL, "model": str(tiny_svd), "image": str(image), "steps": 2}
    remote = pool.run(parse_request({**fields, "out_dir": str(tmp_path / "a")}))
    local = generate(parse_request({**fields, "out_dir": str(tmp_path / "b")}))
    assert_same_video(remote.videos[0].files["mp4"], local.videos[0].files["mp4"])
    assert (
        remote.videos[0].files["mp4"].name.split("_", 1)[1]
        == local.videos[0].files["mp4"].name.split("_", 1)[1]
    )
    sidecar = json.loads(remote.videos[0].files["sidecar"].read_text())
    assert sidecar["request"]["image"] == str(image)


def test_cancel_reaches_the_running_actor_between_steps(pool, tiny_unet3d, tmp_path) -> None:
    request = parse_request(
        {**SMALL, "prompt": "a panda", "model": str(tiny_unet3d), "steps": 500, "out_dir": str(tmp_path)}
    )
    flag = threading.Event()
    seen = []

    def on_event(event) -> None:
        seen.append(event)
        if event.stage == "denoise" and event.step >= 2:
            flag.set()

    started = time.monotonic()
    with pytest.raises(Cancelled):
        pool.run(request, on_event, flag)
    assert time.monotonic() - started < 60 and max(event.step for event in seen) < 500
    assert not list(tmp_path.iterdir())  # nothing half-written comes back
    assert pool.idle() == pool.size


def test_a_killed_actor_is_replaced_and_the_run_made_again(pool, tiny_unet3d, tmp_path) -> None:
    request = parse_request(
        {**SMALL, "prompt": "a panda", "model": str(tiny_unet3d), "steps": 40, "out_dir": str(tmp_path)}
    )
    killed: list[int] = []

    def kill_on_second_step(event) -> None:
        if not killed and event.stage == "denoise" and event.step == 2:
            busy = [member for member in pool.members if member.busy]
            killed.append(busy[0].facts.pid)
            os.kill(killed[0], signal.SIGKILL)

    result = pool.run_retrying(request, kill_on_second_step)
    assert killed and killed[0] not in {member.facts.pid for member in pool.members}
    assert len(frames(result.videos[0].files["mp4"])) == 4
    assert pool.idle() == pool.size


def _member(index: int, memory_gib: float, device: str = "cuda", busy: bool = False, loaded=()) -> Member:
    facts = ActorFacts(pid=index, node="node", device=device, memory_bytes=int(memory_gib * GIB))
    return Member(index, actor=None, facts=facts, busy=busy, loaded=list(loaded))


def test_dispatch_prefers_an_idle_worker_with_the_model_loaded_and_skips_those_too_small() -> None:
    members = [_member(0, 80), _member(1, 24, loaded=["wan"]), _member(2, 80, loaded=["wan"])]
    fourteen_b = 14 * 10**9  # 28 GB in fp16: only the 80 GiB cards hold it
    assert choose(members, "wan", fourteen_b, "auto").index == 2
    assert choose(members, "svd", 10**9, "auto").index == 0
    members[2].busy = True
    assert choose(members, "wan", fourteen_b, "auto").index == 0  # not the small card that has it
    members[0].busy = True
    assert choose(members, "wan", fourteen_b, "auto") is None  # wait for a card that holds it
    assert choose(members, "wan", 10**9, "auto").index == 1
    with pytest.raises(UserError, match=r"model: huge needs about 186\.3 GiB .*\(the largest: 80\.0 GiB"):
        choose(members, "huge", 100 * 10**9, "auto")
    assert needed_bytes(10, "auto", "cpu") == 40 and needed_bytes(10, "bf16", "cpu") == 20


def test_a_folder_fans_out_over_both_workers_with_the_seeds_of_a_run_here(pool, tiny_svd, tmp_path) -> None:
    stills = tmp_path / "stills"
    stills.mkdir()
    for number in range(4):
        Image.new("RGB", (40, 40), (60 * number, 90, 30)).save(stills / f"still{number}.png")
    fields = {**SMALL, "model": str(tiny_svd), "image": str(stills), "steps": 2, "seed": 10}
    remote = generate_batch(parse_request({**fields, "out_dir": str(tmp_path / "a")}), pool=pool)
    local = generate_batch(parse_request({**fields, "out_dir": str(tmp_path / "b")}))
    assert not remote.failures and [r.seed for r in remote.results] == [10, 11, 12, 13]
    for ours, theirs in zip(remote.results, local.results, strict=True):
        assert_same_video(ours.videos[0].files["mp4"], theirs.videos[0].files["mp4"])
    assert all(member.loaded == [str(tiny_svd)] for member in pool.members)  # both took images


def test_a_comparison_runs_its_cells_on_the_pool_and_resumes(pool, tiny_unet3d, tiny_svd, tmp_path) -> None:
    settings = CompareSettings(
        models=[str(tiny_unet3d), str(tiny_svd)],
        seeds=[0, 1],
        prompts=["a panda"],
        images=[Path(__file__).parent.parent / "src/videogen/data/stills" / "red-ball.png"],
        fields={key: SMALL[key] for key in ("num_frames", "height", "width", "steps", "device")},
        encoders=EncoderSources(learned=False),
    )
    first = run_compare(settings, tmp_path / "report", pool=pool)
    assert not first.failures and len(first.records) == 4
    events = []
    again = run_compare(settings, tmp_path / "report", on_cell=events.append, pool=pool)
    assert [event.stage for event in events if event.stage in ("skip", "generate")] == ["skip"] * 4
    assert [r["seed"] for r in again.records] == [r["seed"] for r in first.records]


def test_input_files_travel_by_token_and_outputs_stay_in_their_folder(tmp_path) -> None:
    image, clip, lora = tmp_path / "a@b.png", tmp_path / "clip.mp4", tmp_path / "style.safetensors"
    for path in (image, clip, lora):
        path.write_bytes(path.name.encode())
    request = parse_request(
        {
            "prompt": "x",
            "model": "ltx-video",
            "keyframe": [f"{image}@0:0.5", f"{clip}@8"],
            "lora": [f"{lora}:0.7", "someone/hub-lora:0.5"],
        }
    )
    packed = pack_request(request)
    assert str(tmp_path) not in json.dumps(packed.fields)
    there = unpack_request(packed, tmp_path / "worker" / "in", tmp_path / "worker" / "out")
    assert Path(there.keyframe[0].rsplit("@", 1)[0]).read_bytes() == b"a@b.png"
    assert there.keyframe[1].endswith("clip.mp4@8:1.0") and there.lora[1] == "someone/hub-lora:0.5"
    assert Path(there.lora[0].rsplit(":", 1)[0]).read_bytes() == b"style.safetensors"
    hostile = PackedResult(0, False, [], {"../escaped.txt": b"x"}, "/in", "/out")
    with pytest.raises(ValueError, match="outside the output folder"):
        write_outputs(hostile, packed, request.model_copy(update={"out_dir": str(tmp_path / "here")}))
    assert not (tmp_path / "escaped.txt").exists()


def test_ray_options_are_checked_and_name_the_option() -> None:
    with pytest.raises(FieldError, match="ray_workers: 2 .*only with --ray"):
        cluster_options(None, 2, 1)
    with pytest.raises(FieldError, match="ray_cpus_per_worker"):
        cluster_options(None, None, 4)
    with pytest.raises(FieldError, match="ray_workers: 0"):
        ClusterOptions("local", workers=0)
    assert cluster_options(None, None, 1) is None
    assert cluster_options("auto", 3, 2) == ClusterOptions("auto", 3, 2)
