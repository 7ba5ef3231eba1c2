"""Job events from the worker thread to server-sent-event streams, resumable after a reconnect.

The worker publishes ``queued/started/progress/finished/failed/cancelled`` on an in-process bus.
Each event gets an id (``<bus epoch>-<sequence number>``) and is kept in a bounded buffer per job,
so a client that reconnects with ``Last-Event-ID`` is sent the events it missed, then new ones. A
client that cannot be resumed (no id, an id of an earlier server process, or one the buffer has
dropped) is told the job's current state instead: its status, and the last progress of a running job.

A stream subscribes first and then reads the job, so nothing published in between is lost; it also
re-reads the job when the bus is quiet, so a change made by another process (or an event dropped
because a slow client fell behind) still reaches the client. A stream ends after the job's last
status, or with a final ``deleted`` or ``shutdown`` event; final events carry no id, so a client's
``Last-Event-ID`` stays at the last event it really got. For the same reason a state snapshot (a
running job's status, then its last progress) gives the id to its last event only.

The worker also publishes a ``preview`` of the latents every few denoising steps (a small JPEG as a
``data:`` URL). Previews are live only: they carry no id, are never buffered, replayed or part of a
snapshot (a reconnect resumes from the last event with an id and gets the next preview), and are
dropped first for a client that falls behind. The latest preview of each job is kept in memory, for
``GET /v1/jobs/{id}/preview`` and the web UI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from videogen.sampling.preview import PREVIEW_MEDIA_TYPE, data_url
from videogen.server.schemas import JobOut
from videogen.server.store import TERMINAL

#: the event announcing that a job reached a status
STATUS_EVENTS = {
    "queued": "queued",
    "running": "started",
    "succeeded": "finished",
    "failed": "failed",
    "cancelled": "cancelled",
}
#: events that end every stream of a job
FINAL_EVENTS = ("deleted", "shutdown")
#: progress events a slow client may fall behind by before newer ones are dropped
MAX_BACKLOG = 256
#: events a client may fall behind by before previews (tens of kB each) are dropped
MAX_PREVIEW_BACKLOG = 16
#: events kept per job for clients that reconnect
BUFFERED_EVENTS = 256
#: jobs whose events are kept; the job that published least recently is forgotten first
BUFFERED_JOBS = 64


@dataclass(frozen=True)
class JobEvent:
    type: str
    status: str
    data: dict[str, Any]

    def encode(self, event_id: str | None = None) -> str:
        """The event in the text/event-stream format."""
        head = "" if event_id is None else f"id: {event_id}\n"
        return f"{head}event: {self.type}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n"


def status_event(job: JobOut) -> JobEvent:
    """The job reached its current status; the data is the whole job."""
    return JobEvent(STATUS_EVENTS[job.status], job.status, job.model_dump(mode="json"))


def progress_event(job_id: str, progress: dict[str, Any]) -> JobEvent:
    return JobEvent("progress", "running", {"id": job_id, **progress})


@dataclass(frozen=True)
class ProgressPreview:
    """A running job's latents after ``step`` of ``total`` denoising steps of its video ``video``."""

    job_id: str
    video: int
    step: int
    total: int
    image: bytes
    media_type: str = PREVIEW_MEDIA_TYPE

    @property
    def data_url(self) -> str:
        return data_url(self.image, self.media_type)


def preview_event(preview: ProgressPreview) -> JobEvent:
    data = {"video": preview.video, "step": preview.step, "total": preview.total, "image": preview.data_url}
    return JobEvent("preview", "running", {"id": preview.job_id, **data})


def final_event(kind: str, job_id: str) -> JobEvent:
    reasons = {"deleted": "the job was deleted", "shutdown": "the server is shutting down"}
    return JobEvent(kind, kind, {"id": job_id, "reason": reasons[kind]})


def current_events(job: JobOut) -> list[JobEvent]:
    """What a new subscriber is told first: the status, and the last progress of a running job."""
    events = [status_event(job)]
    if job.status == "running" and job.progress is not None:
        events.append(progress_event(job.id, job.progress.model_dump()))
    return events


#: a published event and its sequence number (None for final events)
Numbered = tuple[int | None, JobEvent]


class Subscriber:
    """One stream's queue, and where it starts: ``replay`` (events after the client's
    ``Last-Event-ID``, None when it cannot be resumed), ``known_status`` (the status of the
    client's last event) and ``last_seq`` (the newest event accounted for)."""

    def __init__(self, job_id: str, replay: list[Numbered] | None, known_status: str, last_seq: int) -> None:
        self.job_id = job_id
        self.replay, self.known_status, self.last_seq = replay, known_status, last_seq
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Numbered] = asyncio.Queue()

    def offer(self, seq: int | None, event: JobEvent) -> None:
        """Called from any thread."""
        with contextlib.suppress(RuntimeError):  # the stream's event loop is closed
            self.loop.call_soon_threadsafe(self._put, seq, event)

    def _put(self, seq: int | None, event: JobEvent) -> None:
        if event.type == "progress" and self.queue.qsize() >= MAX_BACKLOG:
            return
        if event.type == "preview" and self.queue.qsize() >= MAX_PREVIEW_BACKLOG:
            return
        self.queue.put_nowait((seq, event))


class EventBus:
    """Fan-out of job events to the streams subscribed to each job, with a buffer for reconnects."""

    def __init__(self) -> None:
        #: tells this process's event ids from those of an earlier server
        self.epoch = secrets.token_hex(4)
        self._seq = 0
        self._buffers: OrderedDict[str, deque[Numbered]] = OrderedDict()
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._previews: OrderedDict[str, ProgressPreview] = OrderedDict()
        self._shut_down = False
        self._lock = threading.Lock()

    def event_id(self, seq: int) -> str:
        return f"{self.epoch}-{seq}"

    def _sequence_number(self, event_id: str | None) -> int | None:
        epoch, _, seq = (event_id or "").strip().partition("-")
        return int(seq) if epoch == self.epoch and seq.isdecimal() else None

    def subscribe(self, job_id: str, last_event_id: str | None = None) -> Subscriber:
        """Must be called on the event loop the stream runs on."""
        with self._lock:
            buffered = list(self._buffers.get(job_id, ()))
            after = self._sequence_number(last_event_id)
            held = [seq for seq, _ in buffered]
            replay, known_status = None, ""
            if after is not None and after in held:
                index = held.index(after)
                replay, known_status = buffered[index + 1 :], buffered[index][1].status
            last_seq = held[-1] if held else self._seq
            subscriber = Subscriber(job_id, replay, known_status, last_seq)
            self._subscribers.setdefault(job_id, set()).add(subscriber)
            if self._shut_down:
                subscriber.offer(None, final_event("shutdown", job_id))
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            subscribers = self._subscribers.get(subscriber.job_id, set())
            subscribers.discard(subscriber)
            if not subscribers:
                self._subscribers.pop(subscriber.job_id, None)

    def publish(self, job_id: str, event: JobEvent) -> None:
        with self._lock:  # one order for the buffer and every queue, whichever thread publishes
            self._seq += 1
            buffer = self._buffers.pop(job_id, None) or deque(maxlen=BUFFERED_EVENTS)
            buffer.append((self._seq, event))
            self._buffers[job_id] = buffer
            while len(self._buffers) > BUFFERED_JOBS:
                self._buffers.popitem(last=False)
            for subscriber in self._subscribers.get(job_id, ()):
                subscriber.offer(self._seq, event)

    def publish_preview(self, preview: ProgressPreview) -> None:
        """Send a preview to the job's streams (no id, not buffered) and keep it as the job's latest."""
        event = preview_event(preview)
        with self._lock:
            self._previews.pop(preview.job_id, None)
            self._previews[preview.job_id] = preview
            while len(self._previews) > BUFFERED_JOBS:
                self._previews.popitem(last=False)
            for subscriber in self._subscribers.get(preview.job_id, ()):
                subscriber.offer(None, event)

    def latest_preview(self, job_id: str) -> ProgressPreview | None:
        """The job's newest preview, while this process keeps it: during the job and after it, until
        the job runs again or is deleted, or ``BUFFERED_JOBS`` jobs have published previews since."""
        with self._lock:
            return self._previews.get(job_id)

    def announce(self, job: JobOut) -> None:
        """Tell the job's streams that it reached its current status."""
        if job.status == "running":  # a new attempt: the last one's preview is out of date
            with self._lock:
                self._previews.pop(job.id, None)
        self.publish(job.id, status_event(job))

    def close_job(self, job_id: str) -> None:
        """The job was deleted: end its streams with a ``deleted`` event and forget its events."""
        with self._lock:
            self._buffers.pop(job_id, None)
            self._previews.pop(job_id, None)
            for subscriber in self._subscribers.get(job_id, ()):
                subscriber.offer(None, final_event("deleted", job_id))

    def shut_down(self) -> None:
        """The server is stopping: end every stream (and any opened from now on) with ``shutdown``."""
        with self._lock:
            self._shut_down = True
            for job_id, subscribers in self._subscribers.items():
                for subscriber in subscribers:
                    subscriber.offer(None, final_event("shutdown", job_id))


async def event_stream(
    bus: EventBus,
    job_id: str,
    load: Callable[[], Awaitable[JobOut | None]],
    last_event_id: str | None = None,
    poll_seconds: float = 2.0,
) -> AsyncIterator[str]:
    """The job's events as text/event-stream chunks, until it finishes, fails, is cancelled or
    deleted, or the server shuts down."""
    subscriber = bus.subscribe(job_id, last_event_id)
    try:
        job = await load()
        last_id = bus.event_id(subscriber.last_seq)
        # a client that cannot be resumed knows nothing, so it is told the current state
        status = subscriber.known_status
        for seq, event in subscriber.replay or ():
            status = event.status
            yield event.encode(bus.event_id(seq))
        while True:
            if job is None:
                yield final_event("deleted", job_id).encode()
                return
            if job.status != status:  # the store knows more than the bus told this client
                status = job.status
                # only the snapshot's last event carries the id: a client cut off before it
                # has not seen everything up to that id, and must be told the state again
                snapshot = current_events(job)
                for event in snapshot[:-1]:
                    yield event.encode()
                yield snapshot[-1].encode(last_id)
            while status not in TERMINAL:
                try:
                    seq, event = await asyncio.wait_for(subscriber.queue.get(), timeout=poll_seconds)
                except asyncio.TimeoutError:
                    break
                if event.type in FINAL_EVENTS:
                    yield event.encode()
                    return
                if event.type == "preview":
                    yield event.encode()
                    continue
                last_id = bus.event_id(seq) if seq is not None else last_id
                if event.type == "progress" or event.status != status:
                    status = event.status
                    yield event.encode(last_id)
            if status in TERMINAL:
                return
            job = await load()  # the bus was quiet: another process may have changed the job
            if job is not None and job.status == status:
                yield ": keep-alive\n\n"
    finally:
        bus.unsubscribe(subscriber)
