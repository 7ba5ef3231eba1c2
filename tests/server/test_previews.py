"""Latent previews for API clients: ``preview`` events in a job's stream and
``GET /v1/jobs/{id}/preview``, against a real ``videogen serve``; and the bus rules for previews
(live only: no id, never buffered or replayed, dropped first for a slow client)."""

from __future__ import annotations

import asyncio
import base64
import io

from PIL import Image
from server_helpers import ServerProcess
from test_events_resume import stream

from videogen.server.events import MAX_PREVIEW_BACKLOG, EventBus, ProgressPreview, progress_event

NO_PREVIEW_YET = "this server makes one every few denoising steps while it runs the job"


def _decoded(url: str) -> Image.Image:
    head, _, payload = url.partition(",")
    assert head == "data:image/jpeg;base64", head
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    image.load()
    return image


def _preview_response(server: ServerProcess, job_id: str):
    return server.client.get(f"/v1/jobs/{job_id}/preview")


def test_a_jobs_stream_carries_previews_and_the_last_one_stays_served(live_server) -> None:
    job = live_server.submit(steps=12)
    events = stream(live_server, job["id"])
    assert events[-1][1] == "finished"
    previews = [(event_id, data) for event_id, kind, data in events if kind == "preview"]
    assert [data["step"] for _, data in previews] == [5, 10, 12]
    assert all(event_id is None for event_id, _ in previews)  # live only: not resumable
    for _, data in previews:
        assert data["id"] == job["id"] and data["video"] == 0 and data["total"] == 12
        image = _decoded(data["image"])
        assert image.format == "JPEG" and image.size == (256, 256)  # 64 px: 8x8 latents, x32
    progress = [data["step"] for _, kind, data in events if kind == "progress" and data["stage"] == "denoise"]
    assert progress == list(range(1, 13))  # the progress events are all still there

    done = _preview_response(live_server, job["id"])  # after the job, its last preview
    assert done.status_code == 200 and done.headers["content-type"] == "image/jpeg"
    assert done.headers["x-preview-step"] == "12" and done.headers["x-preview-total"] == "12"
    assert done.content == base64.b64decode(previews[-1][1]["image"].partition(",")[2])
    snapshot = live_server.client.get(f"/v1/jobs/{job['id']}").json()
    assert "preview" not in snapshot and "preview" not in (snapshot["progress"] or {})


def test_a_running_job_serves_its_latest_preview_and_others_say_there_is_none(live_server) -> None:
    running = live_server.submit(steps=400)
    queued = live_server.submit(steps=2)
    try:
        first = stream(live_server, running["id"], until=lambda event: event[1] == "preview")
        assert first[-1][2]["step"] % 5 == 0
        response = _preview_response(live_server, running["id"])
        assert response.status_code == 200
        assert int(response.headers["x-preview-step"]) % 5 == 0
        assert response.headers["x-preview-video"] == "0" and response.headers["cache-control"] == "no-store"
        assert Image.open(io.BytesIO(response.content)).size == (256, 256)

        waiting = _preview_response(live_server, queued["id"])
        assert waiting.status_code == 404
        assert waiting.json()["error"] == f"job {queued['id']} has no preview yet: " + NO_PREVIEW_YET
        unknown = _preview_response(live_server, "0" * 32)
        assert unknown.status_code == 404 and unknown.json()["error"].startswith("no job ")
    finally:
        live_server.client.post(f"/v1/jobs/{running['id']}/cancel")
        live_server.client.post(f"/v1/jobs/{queued['id']}/cancel")
        live_server.wait_for(running["id"], {"cancelled"})


def test_the_preview_route_is_described_in_openapi(live_server) -> None:
    route = live_server.client.get("/openapi.json").json()["paths"]["/v1/jobs/{job_id}/preview"]["get"]
    assert set(route["responses"]["200"]["content"]) == {"image/jpeg"}
    assert "404" in route["responses"] and route["summary"]
    events = live_server.client.get("/openapi.json").json()["paths"]["/v1/jobs/{job_id}/events"]["get"]
    assert "`preview`" in events["responses"]["200"]["description"]


def _preview(job_id: str, step: int) -> ProgressPreview:
    return ProgressPreview(job_id, 0, step, 20, f"jpeg {step}".encode())


def test_previews_are_not_buffered_and_a_slow_client_loses_them_first() -> None:
    async def scenario() -> tuple[list, list, ProgressPreview | None, ProgressPreview | None]:
        bus = EventBus()
        slow = bus.subscribe("j")
        for step in range(1, MAX_PREVIEW_BACKLOG + 3):
            bus.publish("j", progress_event("j", {"step": step}))
            bus.publish_preview(_preview("j", step))
        await asyncio.sleep(0)
        received = [(seq, event.type) for seq, event in _drain(slow)]
        buffered = [event.type for _, event in bus.subscribe("j", bus.event_id(1)).replay]
        latest = bus.latest_preview("j")
        bus.close_job("j")
        return received, buffered, latest, bus.latest_preview("j")

    received, buffered, latest, after_delete = asyncio.run(scenario())
    progress = [seq for seq, kind in received if kind == "progress"]
    previews = [seq for seq, kind in received if kind == "preview"]
    assert len(progress) == MAX_PREVIEW_BACKLOG + 2  # every progress event
    assert len(previews) == MAX_PREVIEW_BACKLOG // 2 and set(previews) == {None}  # then previews dropped
    assert buffered == ["progress"] * (MAX_PREVIEW_BACKLOG + 1)  # a reconnect is never replayed a preview
    assert latest == _preview("j", MAX_PREVIEW_BACKLOG + 2)
    assert after_delete is None


def _drain(subscriber) -> list:
    return [subscriber.queue.get_nowait() for _ in range(subscriber.queue.qsize())]
