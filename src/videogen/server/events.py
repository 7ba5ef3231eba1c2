"""Job events from the worker thread to server-sent-event streams.

The worker publishes ``queued/started/progress/finished/failed/cancelled`` on an in-process bus.
A stream subscribes first and then reads the job's current state, so nothing published in between
is lost; it also re-reads the job when the bus is quiet, so a change made by another process (or an
event dropped because a slow client fell behind) still reaches the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

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
#: progress events a slow client may fall behind by before newer ones are dropped
MAX_BACKLOG = 256


@dataclass(frozen=True)
class JobEvent:
    type: str
    status: str
    data: dict[str, Any]

    def encode(self) -> str:
        """The event in the text/event-stream format."""
        return f"event: {self.type}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n"


def status_event(job: JobOut) -> JobEvent:
    """The job reached its current status; the data is the whole job."""
    return JobEvent(STATUS_EVENTS[job.status], job.status, job.model_dump(mode="json"))


def progress_event(job_id: str, progress: dict[str, Any]) -> JobEvent:
    return JobEvent("progress", "running", {"id": job_id, **progress})


def current_events(job: JobOut) -> list[JobEvent]:
    """What a new subscriber is told first: the status, and the last progress of a running job."""
    events = [status_event(job)]
    if job.status == "running" and job.progress is not None:
        events.append(progress_event(job.id, job.progress.model_dump()))
    return events


class _Subscriber:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[JobEvent] = asyncio.Queue()

    def offer(self, event: JobEvent) -> None:
        """Called from any thread."""
        with contextlib.suppress(RuntimeError):  # the stream's event loop is closed
            self.loop.call_soon_threadsafe(self._put, event)

    def _put(self, event: JobEvent) -> None:
        if event.type == "progress" and self.queue.qsize() >= MAX_BACKLOG:
            return
        self.queue.put_nowait(event)


class EventBus:
    """Fan-out of job events to the streams subscribed to each job."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._lock = threading.Lock()

    def subscribe(self, job_id: str) -> _Subscriber:
        """Must be called on the event loop the stream runs on."""
        subscriber = _Subscriber(job_id)
        with self._lock:
            self._subscribers.setdefault(job_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        with self._lock:
            subscribers = self._subscribers.get(subscriber.job_id, set())
            subscribers.discard(subscriber)
            if not subscribers:
                self._subscribers.pop(subscriber.job_id, None)

    def publish(self, job_id: str, event: JobEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(job_id, ()))
        for subscriber in subscribers:
            subscriber.offer(event)

    def announce(self, job: JobOut) -> None:
        """Tell the job's streams that it reached its current status."""
        self.publish(job.id, status_event(job))


async def event_stream(
    bus: EventBus, job_id: str, load: Callable[[], Awaitable[JobOut | None]], poll_seconds: float = 2.0
) -> AsyncIterator[str]:
    """The job's events as text/event-stream chunks, until it finishes, fails, is cancelled or deleted."""
    subscriber = bus.subscribe(job_id)
    try:
        job = await load()
        if job is None:
            return
        for event in current_events(job):
            yield event.encode()
        status = job.status
        while status not in TERMINAL:
            try:
                events = [await asyncio.wait_for(subscriber.queue.get(), timeout=poll_seconds)]
            except asyncio.TimeoutError:
                job = await load()
                if job is None:
                    return
                if job.status == status:
                    yield ": keep-alive\n\n"
                    continue
                events = current_events(job)
            for event in events:
                if event.type == "progress" or event.status != status:
                    status = event.status
                    yield event.encode()
    finally:
        bus.unsubscribe(subscriber)
