"""Real HTTP against ``videogen serve``: everything that can be refused at submit is refused at submit,
with a 422 naming the field, and text that cannot be stored never reaches the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import ServerProcess, png_bytes
from sqlalchemy import create_engine, insert

from videogen.server.store import JobRow, new_id, utcnow
from videogen.testing import build_tiny_model

TINY = {"model": "tiny-unet3d", "num_frames": 8, "height": 64, "width": 64, "steps": 2}


@pytest.fixture(scope="module")
def all_families(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with a tiny model of every kind: unet3d, svd, sv3d-u, sv3d-p."""
    root = tmp_path_factory.mktemp("families")
    for family in ("unet3d", "svd", "sv3d-u", "sv3d-p"):
        build_tiny_model(family, root / f"tiny-{family}")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, all_families: Path) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("refusals") / "data"
    server = ServerProcess(data, all_families, "--max-prompt-chars", "300").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def image_id(server: ServerProcess) -> str:
    response = server.client.post("/v1/uploads", files={"file": ("still.png", png_bytes(64, 64))})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _post(server: ServerProcess, body: dict | str) -> tuple[int, dict]:
    content = body if isinstance(body, str) else json.dumps(body)
    response = server.client.post("/v1/jobs", content=content, headers={"content-type": "application/json"})
    return response.status_code, response.json()


# (model, extra fields, the field the 422 must name); every model's request is valid without the extra.
INVALID = [
    ("tiny-svd", {"scheduler": "ddim"}, "scheduler"),
    ("tiny-svd", {"guidance": 3.0}, "guidance"),
    ("tiny-sv3d-u", {"guidance": 3.0}, "guidance"),
    ("tiny-svd", {"elevations": [10.0]}, "elevations"),
    ("tiny-sv3d-u", {"camera_path": "wave"}, "camera_path"),
    ("tiny-unet3d", {"azimuths": [0.0] * 8}, "azimuths"),
    ("tiny-sv3d-u", {"motion_bucket_id": 100}, "motion_bucket_id"),
    ("tiny-sv3d-p", {"cond_fps": 6}, "cond_fps"),
    ("tiny-sv3d-p", {"noise_aug_strength": 0.1}, "noise_aug_strength"),
    ("tiny-sv3d-p", {"elevations": [1.0, 2.0, 3.0]}, "elevations"),
    ("tiny-sv3d-p", {"camera_path": "wave", "azimuths": [0.0] * 21}, "azimuths"),
    ("tiny-sv3d-u", {"fit": "pad"}, "fit"),
    ("tiny-svd", {"strength": 0.5}, "strength"),
    ("tiny-svd", {"negative_prompt": "blurry"}, "negative_prompt"),
    ("tiny-svd", {"pin_first_frame": True}, "pin_first_frame"),
    ("tiny-svd", {"upscale": "tiny-unet3d"}, "upscale"),
    ("tiny-unet3d", {"offload": "model"}, "offload"),
    ("tiny-unet3d", {"compile": True}, "compile"),
    ("tiny-unet3d", {"strength": 0.5}, "strength"),
    ("tiny-unet3d", {"fit": "pad"}, "fit"),
    ("tiny-unet3d", {"upscale_strength": 0.5}, "upscale_strength"),
    ("tiny-unet3d", {"remove_background": False}, "remove_background"),
    ("tiny-unet3d", {"image_frame_ratio": 0.5}, "image_frame_ratio"),
    ("tiny-unet3d", {"motion_bucket_id": 10}, "motion_bucket_id"),
    ("tiny-unet3d", {"background": "not-a-colour"}, "background"),
    ("tiny-unet3d", {"device": "cuda"}, "device"),
    ("tiny-unet3d", {"steps": True}, "steps"),
    ("tiny-unet3d", {"guidance": False}, "guidance"),
    ("tiny-unet3d", {"seed": -2}, "seed"),
    ("tiny-unet3d", {"elevations": [True]}, "elevations.0"),
    ("tiny-unet3d", {"variant": "fp16"}, "variant"),
    ("tiny-svd", {"variant": "fp16"}, "variant"),
    ("tiny-unet3d", {"model": "modelscope-t2v"}, "model"),
    ("tiny-svd", {"model": "sv3d-p"}, "model"),
    ("tiny-unet3d", {"upscale": "zeroscope-v2-xl"}, "upscale"),
]
WITH_IMAGE = {"tiny-svd", "tiny-sv3d-u", "tiny-sv3d-p"}


def _valid(model: str, image_id: str) -> dict:
    if model in WITH_IMAGE:
        return {"model": model, "image": image_id, "steps": 1, "formats": ["gif"]}
    return {**TINY, "prompt": "a panda"}


@pytest.mark.parametrize("model", ["tiny-unet3d", "tiny-svd", "tiny-sv3d-u", "tiny-sv3d-p"])
def test_the_valid_request_of_each_kind_is_accepted(server: ServerProcess, image_id: str, model: str) -> None:
    """The baseline the refusals below add one field to: proves each refusal is about that field."""
    status, job = _post(server, _valid(model, image_id))
    assert status == 202, job
    server.client.post(f"/v1/jobs/{job['id']}/cancel")


@pytest.mark.parametrize(("model", "extra", "field"), INVALID, ids=[f"{m}-{f}" for m, _, f in INVALID])
def test_a_field_the_model_cannot_use_is_refused_at_submit(
    server: ServerProcess, image_id: str, model: str, extra: dict, field: str
) -> None:
    before = server.client.get("/v1/jobs", params={"limit": 100}).json()["jobs"]
    status, error = _post(server, {**_valid(model, image_id), **extra})
    assert status == 422, error
    assert error["field"] == field, error
    assert error["error"].startswith(f"{field}:") and "internal error" not in error["error"]
    after = server.client.get("/v1/jobs", params={"limit": 100}).json()["jobs"]
    assert len(after) == len(before)


def test_a_family_s_own_guidance_fields_are_accepted_and_recorded(
    server: ServerProcess, image_id: str
) -> None:
    """SVD's guidance is per frame: min/max guidance are its fields, and ``guidance`` stays unset."""
    status, job = _post(server, {**_valid("tiny-svd", image_id), "min_guidance": 1.2, "max_guidance": 2.0})
    assert status == 202, job
    done = server.wait_for(job["id"], {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done["error"]
    sidecar = done["outputs"][0]["metadata"]
    assert sidecar["request"]["guidance"] is None
    assert sidecar["request"]["min_guidance"] == 1.2 and sidecar["request"]["max_guidance"] == 2.0


def test_seed_minus_one_means_a_random_recorded_seed(server: ServerProcess) -> None:
    status, job = _post(server, {**TINY, "prompt": "a panda", "seed": -1})
    assert status == 202, job
    assert job["seed_was_random"] and job["seed"] >= 0 and job["request"]["seed"] == job["seed"]
    server.client.post(f"/v1/jobs/{job['id']}/cancel")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"prompt": "a \\ud800 cat", "model": "tiny-unet3d"}', "prompt"),
        ('{"prompt": "a cat", "negative_prompt": "\\udfff", "model": "tiny-unet3d"}', "negative_prompt"),
        ('{"prompt": "a \\u0000 cat", "model": "tiny-unet3d"}', "prompt"),
        ('{"prompt": "a cat", "model": "tiny-unet3d\\u0000"}', "model"),
    ],
)
def test_text_that_cannot_be_stored_is_refused_and_listing_still_works(
    server: ServerProcess, raw: str, field: str
) -> None:
    status, error = _post(server, raw)
    assert status == 422, error
    assert error["field"] == field
    assert server.client.get("/v1/jobs").status_code == 200


def test_prompts_over_the_server_s_limit_are_refused_naming_it(server: ServerProcess) -> None:
    status, error = _post(server, {**TINY, "prompt": "a" * 301})
    assert status == 422 and error["field"] == "prompt"
    assert "300" in error["error"] and "max_prompt_chars" in error["error"]
    assert len(error["error"]) < 400  # the prompt is not echoed back whole
    status, error = _post(server, {**TINY, "prompt": "a cat", "negative_prompt": "b" * 301})
    assert status == 422 and error["field"] == "negative_prompt"
    status, _ = _post(server, {**TINY, "prompt": "a" * 300, "steps": 1})
    assert status == 202


def test_one_bad_row_never_breaks_the_listing(tmp_path: Path, all_families: Path, postgres_url: str) -> None:
    """A row holding a lone surrogate (stored before submit refused it) is listed with U+FFFD."""
    server = ServerProcess(tmp_path / "data", all_families, "--database-url", postgres_url).start()
    try:
        engine = create_engine(postgres_url)
        job_id, now = new_id(), utcnow()
        row = {
            "id": job_id, "request_hash": "0" * 64, "status": "failed", "model": "tiny-unet3d",
            "request": {"prompt": "a \ud800 cat", "model": "tiny-unet3d"}, "seed": 1,
            "seed_was_random": False, "attempts": 1, "cancel_requested": False, "error": "failed",
            "created_at": now, "updated_at": now,
        }  # fmt: skip
        with engine.begin() as connection:
            connection.execute(insert(JobRow), [row])
        engine.dispose()
        listing = server.client.get("/v1/jobs")
        assert listing.status_code == 200, listing.text
        (listed,) = [job for job in listing.json()["jobs"] if job["id"] == job_id]
        assert listed["request"]["prompt"] == "a \ufffd cat"
        assert server.client.get(f"/v1/jobs/{job_id}").status_code == 200
        status, error = _post(server, '{"prompt": "\\ud800", "model": "tiny-unet3d"}')
        assert status == 422 and error["field"] == "prompt"
    finally:
        server.stop()


def test_models_say_which_are_on_this_server(server: ServerProcess) -> None:
    models = {model["id"]: model for model in server.client.get("/v1/models").json()}
    assert models["tiny-unet3d"]["available"] and models["tiny-sv3d-p"]["available"]
    assert not models["modelscope-t2v"]["available"] and not models["sv3d-u"]["available"]
    status, error = _post(server, {**TINY, "model": "zeroscope-v2-576w", "prompt": "a panda"})
    assert status == 422 and error["field"] == "model"
    assert "videogen download zeroscope-v2-576w" in error["error"]


def test_outputs_are_named_after_the_uploaded_file(server: ServerProcess) -> None:
    """Not after the upload's id: the client's file name is kept (cleaned) in the stored name."""
    upload = server.client.post("/v1/uploads", files={"file": ("../Knight Photo.png", png_bytes(64, 64))})
    assert upload.status_code == 201, upload.text
    assert upload.json()["filename"] == "Knight Photo.png"
    status, job = _post(server, {**_valid("tiny-svd", upload.json()["id"])})
    assert status == 202, job
    done = server.wait_for(job["id"], {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done["error"]
    (video,) = done["outputs"]
    assert "_knight-photo_" in video["files"]["gif"]
    assert video["metadata"]["inputs"]["image"]["name"] == "knight-photo.png"
