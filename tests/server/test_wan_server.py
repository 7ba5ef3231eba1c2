"""Wan through the REST API of a real `videogen serve`, unchanged: a text-to-video job and a first and
last frame job (both images uploaded) run to real mp4 files; Wan's rules are 422s naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import ServerProcess, png_bytes

from videogen.media import read_video
from videogen.testing import build_tiny_model

SHAPE = {"num_frames": 5, "height": 32, "width": 32, "steps": 2}


@pytest.fixture(scope="module")
def wan_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    models = tmp_path_factory.mktemp("wan-models")
    build_tiny_model("wan-t2v", models / "tiny-wan")
    build_tiny_model("wan-flf2v", models / "tiny-flf2v")
    server = ServerProcess(tmp_path_factory.mktemp("wan") / "data", models).start()
    yield server
    server.stop()


def upload(server: ServerProcess, colour: tuple[int, int, int]) -> str:
    files = {"file": ("frame.png", png_bytes(32, 32, colour), "image/png")}
    response = server.client.post("/v1/uploads", files=files)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def video_of(server: ServerProcess, job: dict, tmp_path: Path) -> tuple:
    url = job["outputs"][0]["urls"]["mp4"]
    path = tmp_path / "out.mp4"
    path.write_bytes(server.client.get(url).content)
    return read_video(path)


def test_a_wan_text_to_video_job_writes_its_video(wan_server, tmp_path) -> None:
    job = wan_server.submit(model="tiny-wan", prompt="a cat surfing", seed=3, **SHAPE)
    done = wan_server.wait_for(job["id"], {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done["error"]
    frames, _ = video_of(wan_server, done, tmp_path)
    assert frames.shape == (5, 32, 32, 3)
    assert done["outputs"][0]["metadata"]["request"]["scheduler"] == "unipc"


def test_a_first_and_last_frame_job_takes_two_uploads(wan_server, tmp_path) -> None:
    first, last = upload(wan_server, (220, 40, 40)), upload(wan_server, (40, 40, 220))
    job = wan_server.submit(model="tiny-flf2v", prompt="a ball", image=first, last_image=last, **SHAPE)
    done = wan_server.wait_for(job["id"], {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done["error"]
    record = done["outputs"][0]["metadata"]
    assert set(record["inputs"]) == {"image", "last_image"}
    assert video_of(wan_server, done, tmp_path)[0].shape == (5, 32, 32, 3)


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"num_frames": 6}, "num_frames", "4k+1 frames"),
        ({"height": 40}, "height", "multiples of 16"),
        ({"scheduler": "ddim"}, "scheduler", "takes only unipc, euler"),
        ({"guidance_2": 3.0}, "guidance_2", "two-expert Wan 2.2 A14B"),
        ({"last_image": "an upload"}, "last_image", "give image too"),
    ],
)
def test_wans_rules_are_refused_at_submit_naming_the_field(wan_server, fields, field, says) -> None:
    body = {"model": "tiny-wan", "prompt": "a cat", **SHAPE, **fields}
    if field == "last_image":
        body.update(model="tiny-flf2v", last_image=upload(wan_server, (40, 40, 220)))
    response = wan_server.client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["field"] == field and says in answer["error"], answer


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("/etc/passwd", "not a path or repo"),
        ("../../secret.safetensors", "not a path or repo"),
        ("someone/style-lora", "not a path or repo"),
        ("missing.safetensors:0.5", "no such file in the server's LoRA folder; it holds: "),
    ],
)
def test_a_lora_is_a_file_of_the_servers_lora_folder_never_a_path(wan_server, entry, says) -> None:
    body = {"model": "tiny-wan", "prompt": "a cat", **SHAPE, "lora": [entry]}
    response = wan_server.client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "lora" and says in response.json()["error"]


def test_a_damaged_lora_file_fails_its_job_with_a_message(wan_server) -> None:
    folder = wan_server.data_dir / "loras"
    folder.mkdir(exist_ok=True)
    (folder / "broken.safetensors").write_bytes(b"not a safetensors file")
    job = wan_server.submit(model="tiny-wan", prompt="a cat", lora=["broken.safetensors:0.5"], **SHAPE)
    done = wan_server.wait_for(job["id"], {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "failed"
    assert "lora" in done["error"] and "Traceback" not in done["error"], done["error"]
