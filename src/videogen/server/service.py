"""``JobService``: everything the REST routes do, callable in-process (the web UI uses it directly).

Methods raise ``ApiError`` (an HTTP status, a message and the field at fault) for anything the
caller got wrong, and ``UserError``/``FieldError`` for request fields that cannot run here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from videogen.models_dir import available_models, local_models, resolve_with_models_dir
from videogen.request import Request, parse_request
from videogen.sampling.seeds import pick_seed
from videogen.server.admission import admit
from videogen.server.database import make_engine, migrate
from videogen.server.errors import ApiError
from videogen.server.events import EventBus, ProgressPreview
from videogen.server.files import contained_file
from videogen.server.metrics import Metrics
from videogen.server.schemas import JobOut, JobPage, ModelOut, UploadOut
from videogen.server.settings import Settings
from videogen.server.store import DuplicateKey, JobRow, JobStore, QueueFull, is_id, new_id, utcnow
from videogen.server.uploads import receive_upload, remove_staging_files
from videogen.server.worker import Worker, is_recorded

IDEMPOTENCY_HEADER = "Idempotency-Key"


class JobService:
    def __init__(self, settings: Settings) -> None:
        local_models(settings.models_dir)  # a models_dir or preload mistake fails now, not at a job
        for model in settings.preload:
            resolve_with_models_dir(model, settings.models_dir)
        self.settings = settings
        self.store = JobStore(make_engine(settings.database))
        self.bus = EventBus()
        self.metrics = Metrics(self.store)
        self.worker = Worker(settings, self.store, self.bus, self.metrics) if settings.run_worker else None

    def start(self) -> None:
        """Migrate the database, tidy the data folder, and start the worker."""
        migrate(self.store.engine)
        remove_staging_files(self.settings)
        if self.worker is not None:
            self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.store.engine.dispose()

    # jobs

    def submit(
        self, fields: Request | Mapping[str, Any], idempotency_key: str | None = None
    ) -> tuple[JobOut, bool]:
        """Queue a job; returns it and whether it is new (False: the key's earlier job, replayed)."""
        request = fields if isinstance(fields, Request) else parse_request(dict(fields))
        request_hash = hashlib.sha256(
            json.dumps(request.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()
        if idempotency_key is not None and (earlier := self.store.job_by_key(idempotency_key)):
            return self._replay(earlier, request_hash), False
        admit(request, self.settings, self.store)
        seed, was_random = pick_seed(request.seed)
        now = utcnow()
        row = JobRow(
            id=new_id(),
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            status="queued",
            model=request.model,
            request={**request.model_dump(mode="json", exclude={"out_dir"}), "seed": seed},
            seed=seed,
            seed_was_random=was_random,
            attempts=0,
            cancel_requested=False,
            created_at=now,
            updated_at=now,
        )
        try:
            self.store.add_job(row, self.settings.max_queue)
        except DuplicateKey:  # the same key, submitted concurrently, won the race
            return self._replay(self.store.job_by_key(idempotency_key), request_hash), False
        except QueueFull as full:
            raise ApiError(
                429,
                f"the queue is full ({full.waiting} jobs waiting); try again later",
                headers={"Retry-After": "30"},
            ) from None
        job = JobOut.from_row(row)
        self.bus.announce(job)
        if self.worker is not None:
            self.worker.wake()
        return job, True

    def _replay(self, earlier: JobRow, request_hash: str) -> JobOut:
        if earlier.request_hash != request_hash:
            raise ApiError(
                409, f"{IDEMPOTENCY_HEADER}: already used for a different request", IDEMPOTENCY_HEADER
            )
        return JobOut.from_row(earlier)

    def find(self, job_id: str) -> JobOut | None:
        row = self.store.job(job_id) if is_id(job_id) else None
        return None if row is None else JobOut.from_row(row)

    def get(self, job_id: str) -> JobOut:
        job = self.find(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r}")
        return job

    def list(
        self,
        statuses: Sequence[str] = (),
        model: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> JobPage:
        """Newest first; ``cursor`` is the ``next_cursor`` of the previous page."""
        if cursor is not None and not (cursor.isdecimal() and 0 < int(cursor) < 2**63):
            raise ApiError(422, f"cursor: {cursor!r} is not a cursor from a previous page", "cursor")
        before = None if cursor is None else int(cursor)
        rows = self.store.jobs(statuses, model, limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return JobPage(
            jobs=[JobOut.from_row(row) for row in rows], next_cursor=str(rows[-1].seq) if more else None
        )

    def cancel(self, job_id: str) -> JobOut:
        """A queued job is cancelled at once; a running one stops at its next step."""
        job_id = self.get(job_id).id
        if self.store.transition(job_id, ["queued"], status="cancelled", finished_at=utcnow()):
            self.bus.announce(self.get(job_id))
        elif self.store.transition(job_id, ["running"], cancel_requested=True) and self.worker is not None:
            self.worker.cancel(job_id)
        job = self.get(job_id)
        if job.status in ("succeeded", "failed"):
            raise ApiError(409, f"job {job_id} has already {job.status}; there is nothing to cancel")
        return job

    def delete(self, job_id: str) -> None:
        """Remove the job's record and files; a running job must be cancelled first."""
        job_id = self.get(job_id).id
        if not self.store.delete_job(job_id):
            job = self.get(job_id)  # 404 if another request deleted it meanwhile
            raise ApiError(409, f"job {job_id} is {job.status}; cancel it first, then delete it")
        shutil.rmtree(self.settings.job_dir(job_id), ignore_errors=True)
        self.bus.close_job(job_id)

    def preview(self, job_id: str) -> ProgressPreview | None:
        """The job's latest latent preview, if this server ran it recently (kept in memory only, so
        cheap enough to poll; the database is not read)."""
        return self.bus.latest_preview(job_id)

    def output_file(self, job_id: str, path: str) -> Path:
        """One of the files a succeeded job recorded; nothing else in its folder (a staged
        ``.tmp-*`` file, a reserved empty sidecar, what an interrupted attempt left) is served."""
        row = self.store.job(job_id) if is_id(job_id) else None
        if row is None:
            raise ApiError(404, f"no job {job_id!r}")
        recorded = is_recorded(row.outputs, path)
        found = contained_file(self.settings.job_dir(row.id), path) if recorded else None
        if found is None:
            raise ApiError(404, f"job {row.id} has no file {path!r}")
        return found

    # uploads, models, health

    def upload(self, source: BinaryIO, filename: str) -> UploadOut:
        return UploadOut.from_row(receive_upload(source, filename, self.settings, self.store))

    def models(self) -> list[ModelOut]:
        return [ModelOut.from_spec(spec) for spec in available_models(self.settings.models_dir).values()]

    def queue_depth(self) -> int:
        return self.store.queue_depth()
