"""The HTTP API in-process: every class of bad input is a 4xx naming the field, uploads are checked
by decoding, file routes stay inside the job's folder, and the API key guards all but /healthz."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch
from server_helpers import SMALL, gif_bytes, mp4_bytes, png_bytes, png_header_only

from videogen.catalog import CATALOG


def problem(response) -> tuple[int, str | None]:
    """The status and the field an error answer names."""
    body = response.json()
    assert body["error"], body
    return response.status_code, body["field"]


def upload(client, content: bytes, name: str = "input.png"):
    return client.post("/v1/uploads", files={"file": (name, content, "application/octet-stream")})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"num_frames": 0}, "num_frames"),
        ({"steps": 5000}, "steps"),
        ({"height": 65}, "height"),
        ({"guidance": "lots"}, "guidance"),
        ({"colour": "red"}, "colour"),  # unknown keys are errors
        ({"scheduler": "magic"}, "scheduler"),
        ({"model": "no-such-model"}, "model"),
        ({"model": "/etc"}, "model"),  # a server path is not a model the server offers
        ({"upscale": "no-such-model"}, "upscale"),
        ({"prompt": None}, "prompt"),  # a text-to-video model needs a prompt
        ({"out_dir": "/tmp/elsewhere"}, "out_dir"),
        ({"image": "/etc/passwd"}, "image"),  # inputs are upload ids, never server paths
        ({"video": "0" * 32}, "video"),
        ({"num_frames": 100}, "num_frames"),  # the model's own limit (64)
        ({"steps": 501}, "steps"),  # the server's cap
        ({"num_videos": 9}, "num_videos"),
        ({"negative_prompt": "blur", "motion_bucket_id": 3}, "motion_bucket_id"),  # another family's field
    ],
)
def test_bad_requests_answer_422_naming_the_field(client, fields, field) -> None:
    response = client.post("/v1/jobs", json={**SMALL, **fields})
    assert problem(response) == (422, field), response.json()
    assert field in response.json()["error"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_the_server_lacks_is_refused(client) -> None:
    assert problem(client.post("/v1/jobs", json={**SMALL, "device": "cuda"})) == (422, "device")


@pytest.mark.parametrize(
    ("content", "field"),
    [(b"{not json", "body"), (b"[1, 2]", "body"), (b"", "body"), (b'"text"', "body")],
)
def test_a_body_that_is_not_a_json_object_is_a_422(client, content, field) -> None:
    response = client.post("/v1/jobs", content=content, headers={"content-type": "application/json"})
    assert problem(response) == (422, field)


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=done", "status"), ("limit=0", "limit"), ("limit=101", "limit"), ("cursor=abc", "cursor")],
)
def test_bad_list_parameters_are_a_422(client, query, field) -> None:
    assert problem(client.get(f"/v1/jobs?{query}")) == (422, field)


def test_idempotency_key_over_http(client) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    first = client.post("/v1/jobs", json={**SMALL, "seed": 1}, headers=headers)
    again = client.post("/v1/jobs", json={**SMALL, "seed": 1}, headers=headers)
    assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    assert first.headers["location"] == f"/v1/jobs/{first.json()['id']}"
    other = client.post("/v1/jobs", json={**SMALL, "seed": 2}, headers=headers)
    assert problem(other) == (409, "Idempotency-Key")
    too_long = client.post("/v1/jobs", json=SMALL, headers={"Idempotency-Key": "k" * 256})
    assert problem(too_long) == (422, "Idempotency-Key")


def test_images_and_videos_are_accepted_by_content_not_name(client, tmp_path) -> None:
    image = upload(client, png_bytes(40, 30), "holiday.txt")
    assert image.status_code == 201, image.text
    assert image.json() | {"id": None, "sha256": None, "created_at": None} == {
        "id": None,
        "kind": "image",
        "content_type": "image/png",
        "filename": "holiday.txt",
        "size_bytes": len(png_bytes(40, 30)),
        "width": 40,
        "height": 30,
        "frames": 1,
        "sha256": None,
        "created_at": None,
    }
    video = upload(client, mp4_bytes(tmp_path, frames=6), "clip.png")
    assert video.status_code == 201 and video.json()["kind"] == "video" and video.json()["frames"] == 6
    assert video.json()["content_type"] == "video/mp4"
    animation = upload(client, gif_bytes(frames=3), "anim.gif").json()
    assert (animation["kind"], animation["frames"], animation["content_type"]) == ("video", 3, "image/gif")
    assert upload(client, gif_bytes(frames=1), "still.gif").json()["kind"] == "image"


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"just some text, named like an image", 415),
        (png_bytes()[:60], 415),  # truncated: the header is fine, the pixels are not
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 415),
        (b"", 422),
    ],
)
def test_files_that_do_not_decode_are_refused(client, content, status) -> None:
    assert problem(upload(client, content, "photo.png")) == (status, "file")


def test_upload_limits_on_bytes_and_pixels(make_client, settings) -> None:
    client = make_client(replace(settings, max_upload_bytes=2000, max_upload_pixels=64 * 64))
    assert problem(upload(client, png_bytes(65, 64))) == (413, "file")
    assert problem(upload(client, png_header_only(8000, 8000))) == (413, "file")  # checked before decoding
    assert problem(upload(client, png_header_only(100_000, 100_000))) == (413, "file")  # Pillow's own limit
    assert upload(client, png_bytes(64, 64)).status_code == 201
    big = os.urandom(200_000)
    assert problem(upload(client, big)) == (413, "file")  # refused by its Content-Length
    streamed = client.post(
        "/v1/uploads",
        content=(chunk for chunk in [b"--x\r\n", big, b"\r\n--x--\r\n"]),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert problem(streamed) == (413, "file")  # no Content-Length: stopped while it arrives
    assert not list(settings.uploads_dir.glob(".*.part"))


def test_uploads_are_used_by_id_and_only_as_their_kind(client, tmp_path) -> None:
    image_id = upload(client, png_bytes(64, 64)).json()["id"]
    video_id = upload(client, mp4_bytes(tmp_path), "clip.mp4").json()["id"]
    job = client.post("/v1/jobs", json={**SMALL, "image": image_id})
    assert job.status_code == 202 and job.json()["request"]["image"] == image_id
    assert client.post("/v1/jobs", json={**SMALL, "video": video_id}).status_code == 202
    assert problem(client.post("/v1/jobs", json={**SMALL, "image": video_id})) == (422, "image")
    assert problem(client.post("/v1/jobs", json={**SMALL, "video": image_id})) == (422, "video")


def test_file_routes_cannot_leave_the_job_folder(client, settings, tmp_path) -> None:
    job_id = client.post("/v1/jobs", json=SMALL).json()["id"]
    folder = settings.job_dir(job_id)
    folder.mkdir(parents=True)
    (folder / "video.mp4").write_bytes(b"\x00" * 10)
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret content")
    (folder / "link.txt").symlink_to(secret)
    (settings.outputs_dir / "other.txt").write_text("another job's file")
    # Only recorded outputs are served; a recorded link that leaves the folder is still refused.
    files = {"mp4": "video.mp4", "sidecar": "link.txt", "gif": "../other.txt"}
    video = {"model": "tiny-unet3d", "seed": 0, "files": files, "timings": {}, "metadata": {}}
    store = client.app.state.service.store
    assert store.transition(job_id, ["queued"], status="succeeded", outputs=[video])
    assert client.get(f"/v1/jobs/{job_id}/files/video.mp4").status_code == 200
    attempts = [
        "../other.txt",
        "..%2Fother.txt",
        "%2e%2e/%2e%2e/videogen.db",
        "..%5C..%5Cvideogen.db",
        "%2F" + str(secret).lstrip("/"),
        "/" + str(secret),
        "link.txt",
        "video.mp4%00.png",
        "",
        ".",
    ]
    for path in attempts:
        response = client.get(f"/v1/jobs/{job_id}/files/{path}")
        assert response.status_code == 404, (path, response.text)
        assert "top secret" not in response.text
    for job in ("..", "..%2F..", "%2e%2e"):
        assert client.get(f"/v1/jobs/{job}/files/videogen.db").status_code == 404


def test_the_api_key_guards_everything_but_health(make_client, settings) -> None:
    client = make_client(replace(settings, api_key="s3cret"))
    for path in ("/v1/jobs", "/v1/models", "/metrics", f"/v1/jobs/{'0' * 32}"):
        response = client.get(path)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/v1/jobs", json=SMALL).status_code == 401
    assert upload(client, png_bytes()).status_code == 401
    authorized = {"Authorization": "Bearer s3cret"}
    assert client.get("/v1/jobs", headers=authorized).status_code == 200
    assert client.post("/v1/jobs", json=SMALL, headers=authorized).status_code == 202
    assert client.get("/healthz").status_code == 200


def test_cancel_and_delete_queued_jobs(client) -> None:
    job_id = client.post("/v1/jobs", json=SMALL).json()["id"]
    cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    for response in (
        client.get(f"/v1/jobs/{job_id}"),
        client.delete(f"/v1/jobs/{job_id}"),
        client.post(f"/v1/jobs/{job_id}/cancel"),
        client.get(f"/v1/jobs/{job_id}/events"),
        client.get(f"/v1/jobs/{job_id}/preview"),
        client.get("/v1/jobs/not-an-id/preview"),
        client.get("/v1/jobs/not-an-id"),
    ):
        assert response.status_code == 404 and response.json()["error"]


def test_models_lists_the_catalog_and_the_models_dir(client) -> None:
    models = {model["id"]: model for model in client.get("/v1/models").json()}
    assert set(CATALOG) < set(models)
    tiny = models["tiny-unet3d"]
    assert tiny["local"] and tiny["family"] == "unet3d" and "t2v" in tiny["tasks"]
    assert not models["svd"]["local"] and models["svd"]["source"].startswith("stabilityai/")


def test_health_metrics_and_openapi(client) -> None:
    client.post("/v1/jobs", json=SMALL)
    assert client.get("/healthz").json() == {"status": "ok", "queue_depth": 1, "worker": False}
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "videogen_queue_depth 1.0" in metrics.text
    assert 'videogen_jobs{status="queued"} 1.0' in metrics.text
    assert "videogen_generation_seconds" in metrics.text
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {
        "/v1/uploads",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/preview",
        "/v1/jobs/{job_id}/files/{path}",
        "/v1/models",
        "/healthz",
        "/metrics",
    }
    assert "Request" in schema["components"]["schemas"]
    events = schema["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]
    assert "text/event-stream" in events["content"]


def test_a_huge_json_body_is_refused_before_it_is_read(client) -> None:
    huge = {**SMALL, "prompt": "x" * 2**21}
    assert problem(client.post("/v1/jobs", json=huge)) == (413, "body")
    streamed = client.post(
        "/v1/jobs",
        content=(b"x" * 65536 for _ in range(40)),
        headers={"content-type": "application/json"},
    )
    assert problem(streamed) == (413, "body")
