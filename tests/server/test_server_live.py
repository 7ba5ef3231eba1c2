"""Real HTTP against ``python -m videogen serve`` on a loopback port, with the tiny model:
submit, stream events, fetch the mp4 with a Range request, cancel, list, delete; 50 concurrent
submissions; and recovery after the process is killed with SIGKILL in the middle of a job."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace

import av
import httpx


def test_submit_stream_and_fetch_the_video_with_ranges(live_server) -> None:
    job = live_server.submit(steps=3, seed=11, formats=["mp4", "gif"])
    events = live_server.events(job["id"])
    kinds = [kind for kind, _ in events]
    assert kinds[0] in ("queued", "started") and kinds[-1] == "finished"
    denoise = [data for kind, data in events if kind == "progress" and data["stage"] == "denoise"]
    assert [data["step"] for data in denoise] == [1, 2, 3]
    assert all(data["total"] == 3 and data["eta"] is not None for data in denoise)
    finished = events[-1][1]
    assert finished["status"] == "succeeded" and finished["seed"] == 11
    (video,) = finished["outputs"]

    whole = live_server.client.get(video["urls"]["mp4"])
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    with av.open(io.BytesIO(whole.content)) as container:
        assert len(list(container.decode(video=0))) == 8
    size = len(whole.content)
    head = live_server.client.get(video["urls"]["mp4"], headers={"Range": "bytes=0-99"})
    assert head.status_code == 206 and head.headers["content-range"] == f"bytes 0-99/{size}"
    assert head.content == whole.content[:100]
    tail = live_server.client.get(video["urls"]["mp4"], headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == whole.content[-50:]
    beyond = live_server.client.get(video["urls"]["mp4"], headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert live_server.client.get(video["urls"]["gif"]).headers["content-type"] == "image/gif"
    sidecar = live_server.client.get(video["urls"]["sidecar"])
    assert sidecar.headers["content-type"] == "application/json" and sidecar.json()["seed"] == 11


def test_cancel_a_running_job_and_late_subscribers_get_the_current_state(live_server) -> None:
    job = live_server.submit(steps=200)
    live_server.events(job["id"], until=lambda kind, data: kind == "progress" and data["step"] >= 2)
    late = live_server.events(job["id"], until=lambda kind, _: kind == "progress")
    assert [kind for kind, _ in late] == ["started", "progress"] and late[1][1]["step"] >= 1
    response = live_server.client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 202 and response.json()["cancel_requested"]
    events = live_server.events(job["id"])
    assert events[-1][0] == "cancelled" and events[-1][1]["outputs"] == []
    assert live_server.client.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"


def test_list_filters_pages_and_delete(live_server) -> None:
    first = live_server.submit(steps=2, seed=1)
    second = live_server.submit(steps=2, seed=2)
    live_server.wait_for(second["id"], {"succeeded"})
    page = live_server.client.get("/v1/jobs", params={"limit": 1, "status": "succeeded"}).json()
    assert [job["id"] for job in page["jobs"]] == [second["id"]] and page["next_cursor"]
    older = live_server.client.get(
        "/v1/jobs", params={"limit": 1, "status": "succeeded", "cursor": page["next_cursor"]}
    ).json()
    assert [job["id"] for job in older["jobs"]] == [first["id"]]
    assert live_server.client.get("/v1/jobs", params={"model": "svd"}).json()["jobs"] == []

    url = live_server.client.get(f"/v1/jobs/{first['id']}").json()["outputs"][0]["urls"]["mp4"]
    assert live_server.client.delete(f"/v1/jobs/{first['id']}").status_code == 204
    assert live_server.client.get(f"/v1/jobs/{first['id']}").status_code == 404
    assert live_server.client.get(url).status_code == 404
    assert not (live_server.data_dir / "outputs" / first["id"]).exists()


def test_50_concurrent_submissions_over_http(live_server) -> None:
    async def submit_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as client:
            body = {"prompt": "a panda", "model": "tiny-unet3d", "height": 64, "width": 64, "num_frames": 8}
            requests = [client.post("/v1/jobs", json={**body, "seed": 1000 + n}) for n in range(50)]
            requests += [
                client.post("/v1/jobs", json={**body, "seed": 7}, headers={"Idempotency-Key": "same"})
                for _ in range(10)
            ]
            return await asyncio.gather(*requests)

    responses = asyncio.run(submit_all())
    assert all(response.status_code == 202 for response in responses), [r.text for r in responses]
    ids = [response.json()["id"] for response in responses]
    assert len(set(ids[:50])) == 50 and len(set(ids[50:])) == 1
    listed = live_server.client.get("/v1/jobs", params={"limit": 100}).json()["jobs"]
    seeds = [job["seed"] for job in listed if job["id"] in set(ids)]
    assert sorted(seeds) == [7, *range(1000, 1050)]
    for job_id in set(ids):  # free the worker for the other tests
        assert live_server.client.post(f"/v1/jobs/{job_id}/cancel").status_code in (200, 202, 409)


def test_sigkill_mid_job_requeues_it_and_fails_it_after_max_attempts(
    spawn_server, start_service, settings
) -> None:
    def kill_during(server, job_id: str) -> None:
        server.events(job_id, until=lambda kind, data: kind == "progress" and data["step"] >= 2)
        server.kill()

    first = spawn_server("--max-attempts", "2")
    job = first.submit(steps=20, seed=5)
    kill_during(first, job["id"])

    second = spawn_server("--max-attempts", "2")
    finished = second.events(job["id"])[-1][1]  # back in the queue, run again from the start
    assert finished["status"] == "succeeded" and finished["attempts"] == 2 and finished["seed"] == 5
    assert second.client.get(finished["outputs"][0]["urls"]["mp4"]).status_code == 200
    doomed = second.submit(steps=200)
    kill_during(second, doomed["id"])

    # The third start is in-process (same recovery code, without paying for another interpreter).
    third = start_service(replace(settings, data_dir=second.data_dir, run_worker=True, max_attempts=1))
    failed = third.get(doomed["id"])
    assert failed.status == "failed" and "interrupted" in failed.error and failed.attempts == 1


def test_serve_on_postgresql(spawn_server, postgres_url) -> None:
    server = spawn_server("--database-url", postgres_url)
    job = server.submit(steps=2)
    assert server.events(job["id"])[-1][1]["status"] == "succeeded"
    assert not (server.data_dir / "videogen.db").exists()
