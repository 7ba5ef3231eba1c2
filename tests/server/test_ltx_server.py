"""LTX-Video through the REST API of a real `videogen serve`: a keyframe job names its uploads by id
and runs to a real mp4; keyframes that name no upload, or a path, are 422s naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import ServerProcess, png_bytes

from videogen.media import read_video
from videogen.testing import build_tiny_model

SHAPE = {"num_frames": 17, "height": 64, "width": 64, "steps": 2}


@pytest.fixture(scope="module")
def ltx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    models = tmp_path_factory.mktemp("ltx-models")
    build_tiny_model("ltx-095", models / "tiny-ltx")
    server = ServerProcess(tmp_path_factory.mktemp("ltx") / "data", models).start()
    yield server
    server.stop()


def upload(server: ServerProcess, colour: tuple[int, int, int]) -> str:
    files = {"file": ("frame.png", png_bytes(64, 64, colour), "image/png")}
    response = server.client.post("/v1/uploads", files=files)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_keyframe_job_takes_uploads_at_their_frames(ltx_server, tmp_path: Path) -> None:
    first, last = upload(ltx_server, (220, 40, 40)), upload(ltx_server, (40, 40, 220))
    body = {"model": "tiny-ltx", "prompt": "a ball", "image": first, "keyframe": [f"{last}@16:0.9"], **SHAPE}
    job = ltx_server.submit(**body)
    done = ltx_server.wait_for(job["id"], {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done["error"]
    metadata = done["outputs"][0]["metadata"]
    (keyframe,) = metadata["request"]["keyframe"]  # the uploaded file ran, at its frame and strength
    assert f"/{last}/" in keyframe and keyframe.endswith("frame.png@16:0.9")
    assert metadata["inputs"]["keyframe"][0]["frame"] == 16
    path = tmp_path / "out.mp4"
    path.write_bytes(ltx_server.client.get(done["outputs"][0]["urls"]["mp4"]).content)
    assert read_video(path)[0].shape == (17, 64, 64, 3)


@pytest.mark.parametrize(
    ("keyframe", "says"),
    [
        ("0123456789abcdef0123456789abcdef@4", "not an upload id"),
        ("/etc/passwd@4", "not an upload id"),
        ("end.png", "FILE@FRAME"),
    ],
)
def test_keyframes_that_name_no_upload_are_refused(ltx_server, keyframe: str, says: str) -> None:
    body = {"model": "tiny-ltx", "prompt": "a ball", "keyframe": [keyframe], **SHAPE}
    response = ltx_server.client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["field"] == "keyframe" and says in answer["error"], answer
