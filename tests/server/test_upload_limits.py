"""Uploaded videos are bounded before they are decoded: the upload check and the submit check read
the container's metadata, the request's max_input_pixels applies to each frame, and a job decodes
only the frames it samples, so a large clip costs the server about one frame of memory."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
from server_helpers import SMALL, ServerProcess, flat_video, memory_kib, reset_peak_memory

from videogen.media.writers import write_webm


def upload(server: ServerProcess, path: Path) -> httpx.Response:
    with path.open("rb") as handle:
        files = {"file": (path.name, handle, "application/octet-stream")}
        return server.client.post("/v1/uploads", files=files)


def test_a_large_video_costs_the_server_about_one_frame_of_memory(spawn_server, tmp_path) -> None:
    server = spawn_server()
    warm_up = server.submit(steps=2)  # loads the model: that memory is not the video's
    assert server.wait_for(warm_up["id"], {"succeeded", "failed"})["status"] == "succeeded"
    pid = server.process.pid
    clip = flat_video(tmp_path / "big.mp4", frames=40, width=4096, height=4096)
    reset_peak_memory(pid)
    idle = memory_kib(pid, "VmRSS")

    uploaded = upload(server, clip)
    assert uploaded.status_code == 201, uploaded.text
    facts = uploaded.json()
    assert (facts["kind"], facts["width"], facts["height"], facts["frames"]) == ("video", 4096, 4096, 40)
    job = server.submit(video=facts["id"], steps=2)
    done = server.wait_for(job["id"], {"succeeded", "failed"}, timeout=120)
    peak = memory_kib(pid, "VmHWM")

    assert done["status"] == "succeeded", done
    growth_mb = (peak - idle) / 1024
    assert growth_mb < 300, f"the server's peak memory grew by {growth_mb:.0f} MB over its idle RSS"
    sidecar = server.client.get(done["outputs"][0]["urls"]["sidecar"]).json()
    assert sidecar["inputs"]["video"]["frames"] == 40 and sidecar["request"]["num_frames"] == 8


def test_video_frames_over_max_input_pixels_are_refused_at_submit(live_server, tmp_path) -> None:
    clip = flat_video(tmp_path / "clip.mp4", frames=4, width=64, height=48)
    video_id = upload(live_server, clip).json()["id"]
    refused = live_server.client.post("/v1/jobs", json={**SMALL, "video": video_id, "max_input_pixels": 3000})
    assert refused.status_code == 422 and refused.json()["field"] == "video", refused.text
    message = refused.json()["error"]
    assert "64x48 = 3072 pixels" in message and "3000 (max_input_pixels)" in message
    taken = live_server.client.post("/v1/jobs", json={**SMALL, "video": video_id, "max_input_pixels": 3072})
    assert taken.status_code == 202, taken.text


def test_upload_limits_apply_to_a_video_from_its_metadata(spawn_server, tmp_path) -> None:
    server = spawn_server("--max-upload-pixels", "3000", "--max-upload-frames", "5")
    too_wide = upload(server, flat_video(tmp_path / "wide.mp4", frames=2, width=64, height=48))
    assert too_wide.status_code == 413 and too_wide.json()["field"] == "file"
    assert "the video's frames have 64x48 = 3072 pixels" in too_wide.json()["error"]
    assert "3000 pixels" in too_wide.json()["error"]
    too_long = upload(server, flat_video(tmp_path / "long.mp4", frames=6, width=40, height=40))
    assert too_long.status_code == 413 and "more than 5 frames" in too_long.json()["error"]
    # WebM states no frame count: its packets are counted
    webm = tmp_path / "clip.webm"
    write_webm(np.full((5, 40, 40, 3), 90, np.uint8), webm, 8.0)
    accepted = upload(server, webm)
    assert accepted.status_code == 201, accepted.text
    assert (accepted.json()["kind"], accepted.json()["frames"]) == ("video", 5)
    write_webm(np.full((6, 40, 40, 3), 90, np.uint8), webm, 8.0)
    assert upload(server, webm).status_code == 413
