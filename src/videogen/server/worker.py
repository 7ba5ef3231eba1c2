"""The worker: claims queued jobs in order and has its executor run them.

The executor is this process (one job at a time, on the local device, engines kept in a bounded
cache between jobs) or a pool of Ray actors (``server.executors``), which runs as many jobs at once
as it has actors: the worker claims a job whenever a slot is free and runs it in its own thread.
Cancellation is checked between denoising steps. Whatever happens inside a job, the job ends in a
recorded status (or, when its Ray actor died, is queued again as one more attempt) and the worker
goes on.

Several servers may share one database: a job is claimed with a lease in this process's name,
which a heartbeat thread renews while the job runs (and through which a cancel requested on
another server arrives). Every write to the running job is conditional on the lease, so a server
that lost it cannot overwrite another's result. Jobs whose lease expired are recovered at start
and, while the worker is idle, every lease/3 seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from videogen.cluster.pool import RemoteFailure, WorkerLost
from videogen.errors import Cancelled, UserError, is_out_of_memory
from videogen.generate import GenerationResult
from videogen.media.writers import remove_output
from videogen.models_dir import model_source
from videogen.request import Request
from videogen.sampling.progress import ProgressEvent, WithPreviews
from videogen.server.admission import local_request
from videogen.server.events import EventBus, ProgressPreview, progress_event
from videogen.server.executors import Executor, make_executor
from videogen.server.metrics import Metrics
from videogen.server.redact import redact_paths
from videogen.server.schemas import FOLDER_KINDS, JobOut
from videogen.server.settings import Settings
from videogen.server.store import JobRow, JobStore, is_id

log = logging.getLogger(__name__)

OUT_OF_MEMORY = "out of memory: lower decode_chunk_size, num_frames or height/width"
#: seconds between progress writes to the store (every event still goes to the streams)
PERSIST_EVERY = 0.5
#: seconds the idle worker waits before looking at the store again (jobs submitted by other processes)
IDLE_POLL = 1.0
#: longest wait between heartbeats, so that a cancel requested on another server arrives soon
CANCEL_POLL = 1.0


def _process_scope() -> str:
    """What a pid means: this boot of this machine and this pid namespace (empty where unknown)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return hashlib.sha256(f"{boot} {namespace}".encode()).hexdigest()[:12]


SCOPE = _process_scope()


def lease_owner_id() -> str:
    """``host:pid:scope:random``: unique to one worker, and tells a later process here if it is dead."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{SCOPE or '-'}:{secrets.token_hex(4)}"


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` was a worker in this machine's pid namespace whose process is gone.

    Such a lease needs no waiting for: a server restarted after a crash takes its jobs back at once.
    Any other owner (another machine or container, or a pid now reused) is trusted until its lease
    expires.
    """
    parts = owner.split(":")
    if len(parts) != 4 or not SCOPE or parts[2] != SCOPE or not parts[1].isdecimal():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):  # another user's process; not a pid
        return False
    return False


def failure_reason(exc: BaseException) -> str:
    """What a failed job records: out of memory with the setting to lower, else the error itself."""
    if is_out_of_memory(exc):
        return OUT_OF_MEMORY
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, RemoteFailure):
        return f"internal error: {exc}"
    return f"internal error: {type(exc).__name__}: {exc}"


class _CancelFlag:
    """Set by a cancel request for this job, by the server shutting down, or by losing the lease."""

    def __init__(self, stopping: threading.Event) -> None:
        self.requested = threading.Event()
        self.lost = threading.Event()
        self.stopping = stopping

    def is_set(self) -> bool:
        return self.requested.is_set() or self.lost.is_set() or self.stopping.is_set()


class _Heartbeat:
    """While a job runs: renews its lease, passes on a cancel requested through any server, and
    stops the job if the lease was lost (recovered by another server after this one stalled)."""

    def __init__(self, store: JobStore, job_id: str, owner: str, lease_seconds: float, flag: _CancelFlag):
        self.store, self.job_id, self.owner, self.flag = store, job_id, owner, flag
        self.lease_seconds = lease_seconds
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="videogen-lease", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(min(self.lease_seconds / 3, CANCEL_POLL)):
            try:
                cancel = self.store.renew_lease(self.job_id, self.owner, self.lease_seconds)
            except Exception:  # the store is unreachable, say: the lease may still hold next time
                log.warning("job %s: could not renew its lease", self.job_id, exc_info=True)
                continue
            if cancel is None:
                log.warning("job %s: this server lost its lease; another one runs it now", self.job_id)
                self.flag.lost.set()
                return
            if cancel:
                self.flag.requested.set()


class _Progress:
    """Sends every progress event (and its preview, if any) to the streams and writes the latest
    progress to the store now and then; previews are never stored."""

    def __init__(self, job_id: str, owner: str, store: JobStore, bus: EventBus) -> None:
        self.job_id, self.owner, self.store, self.bus = job_id, owner, store, bus
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
        if event.preview is not None:
            preview = ProgressPreview(self.job_id, event.video, event.step, event.total, event.preview)
            self.bus.publish_preview(preview)
        now = time.monotonic()
        if event.stage != self.last_stage or now - self.last_write >= PERSIST_EVERY:
            self.store.transition(self.job_id, ["running"], self.owner, progress=progress)
            self.last_write, self.last_stage = now, event.stage


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        bus: EventBus,
        metrics: Metrics,
        executor: Executor | None = None,
    ) -> None:
        self.settings, self.store, self.bus, self.metrics = settings, store, bus, metrics
        self._executor = executor
        self.owner = lease_owner_id()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, tuple[_CancelFlag, threading.Thread]] = {}
        self._cancel_ids: set[str] = set()
        self._thread: threading.Thread | None = None

    @property
    def executor(self) -> Executor:
        """The settings' executor, started (a Ray pool: joined and its actors up) on first use."""
        if self._executor is None:
            self._executor = make_executor(self.settings)
        return self._executor

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Recover jobs whose server stopped, tidy job folders, load the preloaded models, then
        start taking jobs."""
        self._recover()
        remove_leftovers(self.settings, self.store)
        executor = self.executor  # a Ray pool joins its cluster now: a wrong address fails the start
        log.info("running jobs on %d %s", executor.size, "worker" if executor.size == 1 else "workers")
        for model in self.settings.preload:
            executor.preload(model_source(model, self.settings.models_dir))
            log.info("preloaded %s", model)
        self._thread = threading.Thread(target=self._loop, name="videogen-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the running jobs after their current step; they go back to the queue."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            threads = [thread for _, thread in self._running.values()]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._executor is not None:
            self._executor.close()

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, job_id: str) -> None:
        """Stop ``job_id`` at its next step if it is (or is about to be) running here."""
        with self._lock:
            self._cancel_ids.add(job_id)
            if job_id in self._running:
                self._running[job_id][0].requested.set()

    def _recover(self) -> dict[str, int]:
        """Take back running jobs whose lease expired or whose owner died here."""
        dead = [owner for owner in self.store.running_owners() if owner_is_dead(owner)]
        outcome = self.store.recover(self.settings.max_attempts, dead)
        if any(outcome.values()):
            log.warning("jobs whose server stopped while running them: %s", outcome)
        return outcome

    def _loop(self) -> None:
        recover_every = self.settings.lease_seconds / 3
        next_recovery = time.monotonic() + recover_every
        while not self._stopping.is_set():
            try:
                if not self.executor.wait_idle(IDLE_POLL):
                    continue
                job = self.store.claim_next(self.owner, self.settings.lease_seconds)
                if job is not None:
                    self._start_job(job)
                elif time.monotonic() >= next_recovery:
                    outcome = self._recover()
                    if outcome["failed"] or outcome["cancelled"]:
                        remove_leftovers(self.settings, self.store)
                    next_recovery = time.monotonic() + recover_every
                else:
                    self._wake.wait(IDLE_POLL)
                    self._wake.clear()
            except Exception:  # the store is unreachable, say: keep the thread, try again soon
                log.exception("worker error")
                self._stopping.wait(IDLE_POLL)

    def _start_job(self, job: JobRow) -> None:
        """Run ``job`` in a thread of its own; return once it holds its executor slot (or ended), so
        that the next claim sees the executor's free slots as they are."""
        flag = _CancelFlag(self._stopping)
        placed = threading.Event()
        thread = threading.Thread(target=self._run, args=(job, flag, placed), name=f"videogen-job-{job.id}")
        with self._lock:
            if job.cancel_requested or job.id in self._cancel_ids:
                flag.requested.set()
            self._running[job.id] = (flag, thread)
        thread.start()
        placed.wait()

    def _run(self, job: JobRow, flag: _CancelFlag, placed: threading.Event) -> None:
        self._announce(job.id)
        out_dir = self.settings.job_dir(job.id)
        shutil.rmtree(out_dir, ignore_errors=True)  # what an interrupted attempt left
        started = time.perf_counter()
        try:
            with _Heartbeat(self.store, job.id, self.owner, self.settings.lease_seconds, flag):
                request = local_request(Request.model_validate(job.request), self.settings, self.store)
                request = request.model_copy(update={"out_dir": str(out_dir)})
                slot = self.executor.acquire(request, flag)
                placed.set()
                try:
                    progress = WithPreviews(_Progress(job.id, self.owner, self.store, self.bus))
                    result = self.executor.run(request, progress, flag, slot)
                finally:
                    self.executor.release(slot)
        except Cancelled:
            self._stopped(job, flag, out_dir)
        except WorkerLost as exc:
            log.warning("job %s: %s", job.id, exc)
            self._lost(job, str(exc), out_dir)
        except Exception as exc:
            if not isinstance(exc, UserError):
                log.exception("job %s failed", job.id)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            error = redact_paths(failure_reason(exc), self.settings)
            self._clear(job.id, out_dir)
            self.store.finish(job.id, "failed", self.owner, error=error)
        else:
            self._succeeded(job, result, out_dir, time.perf_counter() - started)
        finally:
            placed.set()
            with self._lock:
                self._running.pop(job.id, None)
                self._cancel_ids.discard(job.id)
            self._wake.set()
        self._announce(job.id)

    def _lost(self, job: JobRow, reason: str, out_dir: Path) -> None:
        """The executor's worker died mid-job: that cost the job one attempt; it runs again
        (elsewhere, or on the worker that replaced it) unless it has had ``max_attempts``."""
        self._clear(job.id, out_dir)
        if job.attempts >= self.settings.max_attempts:
            error = f"{reason}; it was the job's attempt {job.attempts} of {self.settings.max_attempts}"
            self.store.finish(job.id, "failed", self.owner, error=redact_paths(error, self.settings))
            return
        self.store.transition(
            job.id,
            ["running"],
            self.owner,
            status="queued",
            started_at=None,
            lease_owner=None,
            lease_expires_at=None,
        )

    def _stopped(self, job: JobRow, flag: _CancelFlag, out_dir: Path) -> None:
        """The job stopped between steps: cancelled, or the server is stopping, or the lease is lost
        (then the job and its folder belong to another server, so nothing is touched)."""
        if flag.lost.is_set():
            return
        if flag.requested.is_set():
            self._clear(job.id, out_dir)
            self.store.finish(job.id, "cancelled", self.owner)
        else:  # shutting down: not the job's fault, so the attempt does not count; the claim tidies
            self.store.transition(
                job.id,
                ["running"],
                self.owner,
                status="queued",
                attempts=job.attempts - 1,
                lease_owner=None,
                lease_expires_at=None,
            )

    def _clear(self, job_id: str, out_dir: Path) -> None:
        """Remove the job's folder before its end is recorded, if this server still holds the job
        (one that lost its lease leaves the folder to the new owner)."""
        if self.store.renew_lease(job_id, self.owner, self.settings.lease_seconds) is not None:
            shutil.rmtree(out_dir, ignore_errors=True)

    def _succeeded(self, job: JobRow, result: GenerationResult, out_dir: Path, seconds: float) -> None:
        recorded = outputs(result, out_dir)
        if self.store.finish(job.id, "succeeded", self.owner, outputs=recorded, generation_seconds=seconds):
            self.metrics.generation_seconds.labels(job.model).observe(seconds)
            return
        log.warning("job %s: finished after this server lost its lease; its files are dropped", job.id)
        for video in result.videos:
            for path in video.files.values():
                remove_output(path)

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


def recorded_names(outputs: Sequence[dict[str, Any]] | None) -> set[str]:
    """The names (relative to the job folder) of the files and folders a job's ``outputs`` record."""
    return {name for video in outputs or () for name in video["files"].values()}


def is_recorded(outputs: Sequence[dict[str, Any]] | None, path: str) -> bool:
    """Whether ``path`` (relative to the job folder) is a recorded file or a file in a recorded folder."""
    inside = PurePosixPath(path)
    in_folder = not inside.name.startswith(".")
    for video in outputs or ():
        for kind, name in video["files"].items():
            if kind in FOLDER_KINDS:
                if in_folder and inside.parent == PurePosixPath(name):
                    return True
            elif path == name:
                return True
    return False


def remove_leftovers(settings: Settings, store: JobStore) -> None:
    """Remove what interrupted attempts left in the folders of jobs that will not run again.

    A failed or cancelled job's folder goes; in a succeeded job's folder, whatever its recorded
    outputs do not name (a staged ``.tmp-*`` file, an empty reserved sidecar). Folders of queued
    and running jobs are left alone: the claim empties them, and the owner is writing there.
    """
    if not settings.outputs_dir.is_dir():
        return
    folders = {path.name: path for path in settings.outputs_dir.iterdir() if is_id(path.name)}
    for job_id, row in store.jobs_by_id(sorted(folders)).items():
        folder = folders[job_id]
        if not folder.is_dir():
            continue
        if row.status in ("failed", "cancelled"):
            shutil.rmtree(folder, ignore_errors=True)
        elif row.status == "succeeded":
            keep = recorded_names(row.outputs)
            for entry in folder.iterdir():
                if entry.name not in keep:
                    remove_output(entry)
