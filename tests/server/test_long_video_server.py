"""Long videos through the REST API of a real ``videogen serve``: a chained job, a job that extends an
uploaded video (named by its upload id), and what cannot be chained refused at submit."""

from __future__ import annotations

import io

import av
from server_helpers import flat_video


def frame_count(server, url: str) -> int:
    with av.open(io.BytesIO(server.client.get(url).content)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_chained_job_and_an_extended_upload_are_one_video_each(spawn_server, tmp_path) -> None:
    server = spawn_server()
    chained = server.submit(steps=2, seed=4, segments=3, overlap=2, segment_prompts=["a", "b", "c"])
    finished = server.events(chained["id"])[-1][1]
    assert finished["status"] == "succeeded", finished
    (video,) = finished["outputs"]
    assert frame_count(server, video["urls"]["mp4"]) == 8 + 2 * 6
    segments = server.client.get(video["urls"]["sidecar"]).json()["record"]["segments"]
    assert [(s["prompt"], s["seed"]) for s in segments] == [("a", 4), ("b", 5), ("c", 6)]

    clip = flat_video(tmp_path / "theirs.mp4", frames=10, width=80, height=48)
    upload = server.client.post("/v1/uploads", files={"file": ("theirs.mp4", clip.read_bytes(), "video/mp4")})
    assert upload.status_code == 201, upload.text
    extended = server.submit(steps=2, seed=1, extend=upload.json()["id"], segments=1)
    finished = server.events(extended["id"])[-1][1]
    assert finished["status"] == "succeeded", finished
    assert frame_count(server, finished["outputs"][0]["urls"]["mp4"]) == 10 + (8 - 4)


def test_what_cannot_be_chained_is_refused_at_submit_naming_the_field(spawn_server) -> None:
    server = spawn_server("--no-worker")
    for fields, field in (
        ({"segments": 2, "formats": ["gif"]}, "formats"),
        ({"segments": 2, "num_videos": 2}, "num_videos"),
        ({"overlap": 3}, "overlap"),
        ({"extend": "not-an-upload"}, "extend"),
        ({"segments": 2, "segment_prompts": ["a", "b\u0000"]}, "segment_prompts"),
        ({"segments": 2, "segment_prompts": ["a", "b" * 5000]}, "segment_prompts"),
        ({"segments": 99}, "segments"),
        ({"interpolate": 9}, "interpolate"),
    ):
        response = server.client.post(
            "/v1/jobs", json={"prompt": "a panda", "model": "tiny-unet3d", **fields}
        )
        assert response.status_code == 422, response.text
        assert field in response.text
