"""Progress streams against a real ``videogen serve``: every event but a preview has an id, a client that
reconnects with ``Last-Event-ID`` gets what it missed and then new events, a deleted job and a
server shutdown end open streams with a final event, and open streams do not hold a shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable, Iterator

import httpx
from server_helpers import ServerProcess

from videogen.server.events import EventBus, Subscriber, event_stream, progress_event
from videogen.server.schemas import JobOut

#: long enough on the tiny model to be running for the whole test (it is cancelled at the end)
LONG = {"steps": 500}
Event = tuple[str | None, str, dict]  # id, type, data


def read_events(lines: Iterator[str], until: Callable[[Event], bool] | None = None) -> list[Event]:
    """Parse text/event-stream lines into (id, type, data) until ``until`` holds or the stream ends."""
    events: list[Event] = []
    event_id, kind = None, None
    for line in lines:
        if line.startswith("id: "):
            event_id = line.removeprefix("id: ")
        elif line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((event_id, kind, json.loads(line.removeprefix("data: "))))
            event_id = None
            if until is not None and until(events[-1]):
                break
    return events


def stream(server: ServerProcess, job_id: str, last_event_id: str | None = None, until=None) -> list[Event]:
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    with server.client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=60) as response:
        assert response.status_code == 200
        return read_events(response.iter_lines(), until)


def progress_at(step: int) -> Callable[[Event], bool]:
    """Whether an event is denoising progress at ``step`` or later."""
    return lambda event: (
        event[1] == "progress" and event[2]["stage"] == "denoise" and event[2]["step"] >= step
    )


def test_every_event_has_an_id_and_a_reconnect_gets_what_it_missed(live_server) -> None:
    # The job waits behind another, so its stream opens before it starts and sees every event.
    blocker = live_server.submit(**LONG)
    job = live_server.submit(steps=6)
    with live_server.client.stream("GET", f"/v1/jobs/{job['id']}/events", timeout=60) as response:
        lines = response.iter_lines()
        first = read_events(lines, until=lambda _: True)
        assert [kind for _, kind, _ in first] == ["queued"]
        live_server.client.post(f"/v1/jobs/{blocker['id']}/cancel")
        first += read_events(lines)
    assert first[-1][1] == "finished"
    # Previews are live only: no id, so a client's Last-Event-ID stays at the last resumable event.
    previews = [event for event in first if event[1] == "preview"]
    assert [(event_id, data["step"]) for event_id, _, data in previews] == [(None, 5), (None, 6)]
    first = [event for event in first if event[1] != "preview"]
    assert all(event_id for event_id, _, _ in first), first
    assert len({event_id for event_id, _, _ in first}) == len(first)

    # The job is over: a reconnect from the third event is sent exactly the rest (previews are not
    # replayed), from the buffer.
    again = stream(live_server, job["id"], last_event_id=first[2][0])
    assert again == first[3:]
    assert stream(live_server, job["id"], last_event_id=first[-1][0]) == []  # nothing was missed

    # An id this server did not give (an earlier process's) cannot be resumed: the current state.
    unknown = stream(live_server, job["id"], last_event_id="0badc0de-3")
    assert [kind for _, kind, _ in unknown] == ["finished"]


def test_a_client_reconnecting_mid_run_gets_the_missed_events_then_new_ones(live_server) -> None:
    job = live_server.submit(steps=12)
    before = stream(live_server, job["id"], until=progress_at(3))
    time.sleep(0.5)  # the job moves on while the client is away
    assert live_server.client.get(f"/v1/jobs/{job['id']}").json()["status"] == "running"
    after = stream(live_server, job["id"], last_event_id=before[-1][0])
    steps = [data["step"] for _, kind, data in before + after if progress_at(1)((None, kind, data))]
    assert steps == list(range(1, 13)), steps  # none lost, none twice
    assert after[-1][1] == "finished"
    epoch, seq = before[-1][0].rsplit("-", 1)
    assert after[0][0] == f"{epoch}-{int(seq) + 1}"


def test_deleting_a_queued_job_ends_its_streams_with_a_deleted_event(live_server) -> None:
    running = live_server.submit(**LONG)
    queued = live_server.submit()
    try:
        with live_server.client.stream("GET", f"/v1/jobs/{queued['id']}/events", timeout=30) as response:
            lines = response.iter_lines()
            assert [kind for _, kind, _ in read_events(lines, until=lambda _: True)] == ["queued"]
            assert live_server.client.delete(f"/v1/jobs/{queued['id']}").status_code == 204
            started = time.monotonic()
            rest = read_events(lines)
        assert [(event_id, kind) for event_id, kind, _ in rest] == [(None, "deleted")]
        assert rest[0][2]["id"] == queued["id"]
        assert time.monotonic() - started < 5
    finally:
        live_server.client.post(f"/v1/jobs/{running['id']}/cancel")
        live_server.wait_for(running["id"], {"cancelled"})


def test_an_open_stream_does_not_hold_a_graceful_shutdown(spawn_server) -> None:
    server = spawn_server()
    job = server.submit(**LONG)
    with server.client.stream("GET", f"/v1/jobs/{job['id']}/events", timeout=30) as response:
        lines = response.iter_lines()
        read_events(lines, until=progress_at(1))
        server.process.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        try:
            rest = read_events(lines)
        except httpx.RemoteProtocolError:  # cut off without a final event
            rest = []
    assert rest and rest[-1][:2] == (None, "shutdown"), rest[-3:]
    server.process.wait(timeout=15)
    assert time.monotonic() - stopping < 5, "the server waited for the open stream"
    assert "Application shutdown complete" in server.log.read_text()  # graceful, not cut short


def test_the_bus_ends_the_streams_of_a_deleted_job_and_all_at_shutdown() -> None:
    """What ``JobService.delete`` and the stop signal call: final events, at once, without ids."""

    async def scenario() -> tuple[list, list, list]:
        bus = EventBus()
        deleted, other = bus.subscribe("a"), bus.subscribe("b")
        bus.close_job("a")
        bus.shut_down()
        late = bus.subscribe("c")  # opened while the server stops
        await asyncio.sleep(0)
        return [queue_items(s) for s in (deleted, other, late)]

    deleted, other, late = asyncio.run(scenario())
    assert [(seq, event.type) for seq, event in deleted] == [(None, "deleted"), (None, "shutdown")]
    assert [(seq, event.type) for seq, event in other] == [(None, "shutdown")]
    assert [(seq, event.type) for seq, event in late] == [(None, "shutdown")]


def test_a_snapshot_of_a_running_job_gives_its_id_to_its_last_event_only() -> None:
    """A client cut off between the status and the progress of a snapshot must not resume past
    the progress it never got."""
    now = "2026-01-01T00:00:00Z"
    progress = {
        "stage": "denoise",
        "video": 0,
        "num_videos": 1,
        "step": 2,
        "total": 6,
        "elapsed": 1.0,
        "eta": 2.0,
    }
    job = JobOut.model_validate(
        {
            "id": "j",
            "status": "running",
            "model": "m",
            "request": {},
            "seed": 1,
            "seed_was_random": False,
            "attempts": 1,
            "cancel_requested": False,
            "progress": progress,
            "error": None,
            "outputs": [],
            "generation_seconds": None,
            "created_at": now,
            "updated_at": now,
            "started_at": now,
            "finished_at": None,
        }
    )

    async def scenario() -> list[str]:
        bus = EventBus()
        bus.publish("j", progress_event("j", {"step": 1}))

        async def load() -> JobOut:
            return job

        chunks = event_stream(bus, "j", load, poll_seconds=0.01)
        return [await anext(chunks), await anext(chunks)]

    status, progress = asyncio.run(scenario())
    assert status.startswith("event: started\n"), status
    assert progress.startswith("id: ") and "event: progress\n" in progress, progress


def queue_items(subscriber: Subscriber) -> list:
    return [subscriber.queue.get_nowait() for _ in range(subscriber.queue.qsize())]
