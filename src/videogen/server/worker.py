"""The worker: one thread that runs queued jobs in order on the local device.

Loaded engines stay in a bounded cache between jobs. Cancellation is checked between denoising
steps. Whatever happens inside a job, the job ends in a recorded status and the thread goes on.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import torch

from videogen.errors import Cancelled, UserError, is_out_of_memory
from videogen.families import EngineCache
from videogen.generate import GenerationResult, generate
from videogen.loading import locate_weights, resolve_device, resolve_dtype
from videogen.models_dir import resolve_with_models_dir
from videogen.request import Request
from videogen.sampling.progress import ProgressEvent
from videogen.server.admission import local_request
from videogen.server.events import EventBus, progress_event
from videogen.server.metrics import Metrics
from videogen.server.schemas import JobOut
from videogen.server.settings import Settings
from videogen.server.store import JobRow, JobStore

log = logging.getLogger(__name__)

OUT_OF_MEMORY = "out of memory: lower decode_chunk_size, num_frames or height/width"
#: seconds between progress writes to the store (every event still goes to the streams)
PERSIST_EVERY = 0.5
#: seconds the idle worker waits before looking at the store again (jobs submitted by other processes)
IDLE_POLL = 1.0


def failure_reason(exc: BaseException) -> str:
    """What a failed job records: out of memory with the setting to lower, else the error itself."""
    if is_out_of_memory(exc):
        return OUT_OF_MEMORY
    if isinstance(exc, UserError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


class _CancelFlag:
    """Set by a cancel request for this job, or by the server shutting down."""

    def __init__(self, stopping: threading.Event) -> None:
        self.requested = threading.Event()
        self.stopping = stopping

    def is_set(self) -> bool:
        return self.requested.is_set() or self.stopping.is_set()


class _Progress:
    """Sends every progress event to the streams and writes the latest to the store now and then."""

    def __init__(self, job_id: str, store: JobStore, bus: EventBus) -> None:
        self.job_id, self.store, self.bus = job_id, store, bus
        self.last_write = 0.0
        self.last_stage = ""

    def __call__(self, event: ProgressEvent) -> None:
        progress = {
            "stage": event.stage,
            "video": event.video,
            "num_videos": event.num_videos,
            "step": event.step,
            "total": event.total,
            "elapsed": round(event.elapsed, 3),
            "eta": None if event.eta is None else round(event.eta, 3),
        }
        self.bus.publish(self.job_id, progress_event(self.job_id, progress))
        now = time.monotonic()
        if event.stage != self.last_stage or now - self.last_write >= PERSIST_EVERY:
            self.store.transition(self.job_id, ["running"], progress=progress)
            self.last_write, self.last_stage = now, event.stage


class Worker:
    def __init__(self, settings: Settings, store: JobStore, bus: EventBus, metrics: Metrics) -> None:
        self.settings, self.store, self.bus, self.metrics = settings, store, bus, metrics
        self.engines = EngineCache(max_engines=settings.max_engines)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._current: tuple[str, _CancelFlag] | None = None
        self._cancel_ids: set[str] = set()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Recover jobs a crash left running, load the preloaded models, then start taking jobs."""
        outcome = self.store.recover(self.settings.max_attempts)
        if any(outcome.values()):
            log.warning("jobs interrupted by the last shutdown: %s", outcome)
        for model in self.settings.preload:
            self.preload(model)
        self._thread = threading.Thread(target=self._loop, name="videogen-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current step; the interrupted job goes back to the queue."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, job_id: str) -> None:
        """Stop ``job_id`` at its next step if it is (or is about to be) running here."""
        with self._lock:
            self._cancel_ids.add(job_id)
            if self._current is not None and self._current[0] == job_id:
                self._current[1].requested.set()

    def preload(self, model: str) -> None:
        """Load ``model``'s engine into the cache as a job with default settings would."""
        spec = resolve_with_models_dir(model, self.settings.models_dir)
        device = resolve_device("auto")
        folder = locate_weights(spec, spec.revision, spec.variant)
        self.engines.get(spec.family, folder, device, resolve_dtype("auto", device), spec.variant)
        log.info("preloaded %s on %s", spec.id, device)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self.store.claim_next()
                if job is None:
                    self._wake.wait(IDLE_POLL)
                    self._wake.clear()
                    continue
                self._run(job)
            except Exception:  # the store is unreachable, say: keep the thread, try again soon
                log.exception("worker error")
                self._stopping.wait(IDLE_POLL)

    def _run(self, job: JobRow) -> None:
        flag = _CancelFlag(self._stopping)
        with self._lock:
            if job.cancel_requested or job.id in self._cancel_ids:
                flag.requested.set()
            self._current = (job.id, flag)
        self._announce(job.id)
        out_dir = self.settings.job_dir(job.id)
        shutil.rmtree(out_dir, ignore_errors=True)  # what an interrupted attempt left
        started = time.perf_counter()
        try:
            request = local_request(Request.model_validate(job.request), self.settings, self.store)
            request = request.model_copy(update={"out_dir": str(out_dir)})
            result = generate(request, _Progress(job.id, self.store, self.bus), flag, self.engines)
        except Cancelled:
            shutil.rmtree(out_dir, ignore_errors=True)
            if flag.requested.is_set():
                self.store.finish(job.id, "cancelled")
            else:  # shutting down: not the job's fault, so the attempt does not count
                self.store.transition(job.id, ["running"], status="queued", attempts=job.attempts - 1)
        except Exception as exc:
            shutil.rmtree(out_dir, ignore_errors=True)
            if not isinstance(exc, UserError):
                log.exception("job %s failed", job.id)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.store.finish(job.id, "failed", error=failure_reason(exc))
        else:
            seconds = time.perf_counter() - started
            self.store.finish(
                job.id, "succeeded", outputs=outputs(result, out_dir), generation_seconds=seconds
            )
            self.metrics.generation_seconds.labels(job.model).observe(seconds)
        finally:
            with self._lock:
                self._current = None
                self._cancel_ids.discard(job.id)
        self._announce(job.id)

    def _announce(self, job_id: str) -> None:
        row = self.store.job(job_id)
        if row is not None:
            self.bus.announce(JobOut.from_row(row))


def outputs(result: GenerationResult, out_dir: Path) -> list[dict[str, Any]]:
    """Each video's files relative to the job folder, timings, and its sidecar."""
    return [
        {
            "model": video.model,
            "seed": video.seed,
            "files": {kind: path.relative_to(out_dir).as_posix() for kind, path in video.files.items()},
            "timings": video.timings,
            "metadata": json.loads(video.files["sidecar"].read_text()),
        }
        for video in result.videos
    ]
