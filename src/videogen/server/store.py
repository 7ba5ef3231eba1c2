"""The job store: tables for jobs and uploads, and the repository the service and worker use.

Every change of a job's status is one conditional UPDATE (``... WHERE status IN (...)``), so the
API thread cancelling a job and the worker claiming it can never both win, on SQLite or PostgreSQL.

Several servers may share one database. A worker claims a job with a lease (``lease_owner``, a
per-process id, and ``lease_expires_at``) that it renews while the job runs; its writes to the job
are conditional on still holding the lease, and recovery takes back only jobs whose lease expired.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATUSES: tuple[str, ...] = get_args(Status)
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
#: the PostgreSQL advisory lock that serialises "count the queue, then insert" across servers
QUEUE_LOCK = 0x76696465_6F67656E  # "videogen"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


def is_id(value: str) -> bool:
    """Whether ``value`` has the shape of a job or upload id (checked before it reaches SQL)."""
    return re.fullmatch(r"[0-9a-f]{32}", value) is not None


class UTCDateTime(TypeDecorator):
    """UTC datetimes on every backend: SQLite hands back naive ones, PostgreSQL the session's zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    """One generation job. ``seq`` orders the queue and the history; ``id`` is what clients see."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_seq", "status", "seq"), {"sqlite_autoincrement": True})

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(255), index=True)
    #: the Request fields as JSON, uploads by id, the seed filled in, ``out_dir`` left out
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger)
    seed_was_random: Mapped[bool] = mapped_column(Boolean)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    outputs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    generation_seconds: Mapped[float | None] = mapped_column(Float)
    #: the worker process running the job, and until when its claim holds unless renewed
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UploadRow(Base):
    """An uploaded image or video, checked by decoding, stored under the data directory."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "image" or "video"
    content_type: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))  # the client's name, for people only
    stored_name: Mapped[str] = mapped_column(String(64))  # file name under the uploads folder
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DuplicateKey(Exception):  # noqa: N818 - a condition, not a failure
    """Another job already holds this idempotency key."""


class QueueFull(Exception):  # noqa: N818 - a condition, not a failure
    """``waiting`` jobs are queued already, as many as the limit allows."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} jobs waiting")
        self.waiting = waiting


class JobStore:
    """Reads and conditional writes of jobs and uploads; each method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def _begin(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # jobs: reads

    def job(self, job_id: str) -> JobRow | None:
        with self._sessions() as session:
            return session.scalar(select(JobRow).where(JobRow.id == job_id))

    def job_by_key(self, key: str) -> JobRow | None:
        with self._sessions() as session:
            return session.scalar(select(JobRow).where(JobRow.idempotency_key == key))

    def jobs(
        self,
        statuses: Sequence[str] = (),
        model: str | None = None,
        limit: int = 20,
        before: int | None = None,
    ) -> list[JobRow]:
        """Newest first; ``before`` is the ``seq`` of the last job of the previous page."""
        query = select(JobRow).order_by(JobRow.seq.desc()).limit(limit)
        if statuses:
            query = query.where(JobRow.status.in_(statuses))
        if model is not None:
            query = query.where(JobRow.model == model)
        if before is not None:
            query = query.where(JobRow.seq < before)
        with self._sessions() as session:
            return list(session.scalars(query))

    def count_by_status(self) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(select(JobRow.status, func.count()).group_by(JobRow.status))
            return {status: count for status, count in rows}

    def queue_depth(self) -> int:
        with self._sessions() as session:
            return session.scalar(select(func.count()).where(JobRow.status == "queued")) or 0

    # jobs: writes

    def add_job(self, job: JobRow, max_queue: int) -> JobRow:
        """Insert ``job`` unless ``max_queue`` jobs are queued (QueueFull); DuplicateKey when its
        idempotency key is taken (also by a racing insert).

        Counting and inserting are one serialised step, so concurrent submits (threads or servers)
        never overfill the queue.
        """
        try:
            with self._begin() as session:
                self._lock_queue(session)
                waiting = session.scalar(select(func.count()).where(JobRow.status == "queued")) or 0
                if waiting >= max_queue:
                    raise QueueFull(waiting)
                session.add(job)
        except IntegrityError:
            if job.idempotency_key and self.job_by_key(job.idempotency_key) is not None:
                raise DuplicateKey(job.idempotency_key) from None
            raise
        return job

    def _lock_queue(self, session: Session) -> None:
        """Hold the queue's lock until ``session``'s transaction ends.

        SQLite: take the database's write lock now (pysqlite would begin a deferred transaction at
        the INSERT, after the count). PostgreSQL: a transaction-level advisory lock, which every
        later statement of the transaction sees past, as READ COMMITTED reads anew per statement.
        """
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            session.execute(text("BEGIN IMMEDIATE"))
        elif dialect == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock(QUEUE_LOCK)))

    def claim_next(self, owner: str | None = None, lease_seconds: float = 0.0) -> JobRow | None:
        """Mark the oldest queued job running (one more attempt) under ``owner``'s lease of
        ``lease_seconds`` and return it; None if there is none. Without an owner the claim holds
        no lease, so recovery may take the job back at once."""
        while True:
            with self._begin() as session:
                oldest = (
                    select(JobRow.seq)
                    .where(JobRow.status == "queued")
                    .order_by(JobRow.seq)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                seq = session.scalar(oldest)
                if seq is None:
                    return None
                now = utcnow()
                claimed = session.execute(
                    update(JobRow)
                    .where(JobRow.seq == seq, JobRow.status == "queued")
                    .values(
                        status="running",
                        attempts=JobRow.attempts + 1,
                        started_at=now,
                        updated_at=now,
                        lease_owner=owner,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                    )
                ).rowcount
                if claimed:
                    return session.scalar(select(JobRow).where(JobRow.seq == seq))
            # Cancelled or deleted between the two statements: take the next one.

    def renew_lease(self, job_id: str, owner: str, lease_seconds: float) -> bool | None:
        """Extend ``owner``'s lease on the running job by ``lease_seconds`` from now.

        None if ``owner`` no longer holds it (recovered, taken over, deleted), else whether a cancel
        was requested (possibly through another server).
        """
        with self._begin() as session:
            renewed = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "running", JobRow.lease_owner == owner)
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
                .returning(JobRow.cancel_requested)
            ).scalar()
        return renewed

    def running_owners(self) -> set[str]:
        """The lease owners of running jobs."""
        query = select(JobRow.lease_owner).where(JobRow.status == "running", JobRow.lease_owner.is_not(None))
        with self._sessions() as session:
            return set(session.scalars(query.distinct()))

    def transition(
        self, job_id: str, from_statuses: Sequence[str], owner: str | None = None, **values: Any
    ) -> bool:
        """Set ``values`` on the job if its status is one of ``from_statuses`` (and, given an
        ``owner``, if that owner holds its lease); whether it was."""
        conditions = [JobRow.id == job_id, JobRow.status.in_(from_statuses)]
        if owner is not None:
            conditions.append(JobRow.lease_owner == owner)
        with self._begin() as session:
            result = session.execute(update(JobRow).where(*conditions).values(updated_at=utcnow(), **values))
            return result.rowcount == 1

    def finish(self, job_id: str, status: Status, owner: str | None = None, **values: Any) -> bool:
        """A running job ends: succeeded, failed or cancelled (only by ``owner``, if given)."""
        return self.transition(
            job_id, ["running"], owner, status=status, finished_at=utcnow(), lease_expires_at=None, **values
        )

    def delete_job(self, job_id: str) -> bool:
        """Remove a job that is not running; whether one was removed."""
        with self._begin() as session:
            result = session.execute(delete(JobRow).where(JobRow.id == job_id, JobRow.status != "running"))
            return result.rowcount == 1

    def recover(self, max_attempts: int, dead_owners: Sequence[str] = ()) -> dict[str, int]:
        """Running jobs whose lease expired (or whose owner is known dead): cancelled if asked,
        failed after ``max_attempts``, else queued again. A job with a live lease is left alone."""
        now = utcnow()
        lapsed = (
            JobRow.status == "running",
            JobRow.lease_expires_at.is_(None)
            | (JobRow.lease_expires_at <= now)
            | JobRow.lease_owner.in_(list(dead_owners)),
        )
        released = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
        with self._begin() as session:
            cancelled = session.execute(
                update(JobRow)
                .where(*lapsed, JobRow.cancel_requested.is_(True))
                .values(status="cancelled", finished_at=now, **released)
            ).rowcount
            failed = session.execute(
                update(JobRow)
                .where(*lapsed, JobRow.attempts >= max_attempts)
                .values(
                    status="failed",
                    finished_at=now,
                    error=f"interrupted: the server stopped during each of {max_attempts} attempts",
                    **released,
                )
            ).rowcount
            requeued = session.execute(
                update(JobRow).where(*lapsed).values(status="queued", started_at=None, **released)
            ).rowcount
        return {"requeued": requeued, "failed": failed, "cancelled": cancelled}

    def jobs_by_id(self, job_ids: Sequence[str]) -> dict[str, JobRow]:
        """The jobs among ``job_ids`` that exist, by id."""
        found: dict[str, JobRow] = {}
        with self._sessions() as session:
            for start in range(0, len(job_ids), 500):  # bounded IN lists
                chunk = job_ids[start : start + 500]
                rows = session.scalars(select(JobRow).where(JobRow.id.in_(chunk)))
                found.update((row.id, row) for row in rows)
        return found

    # uploads

    def add_upload(self, upload: UploadRow) -> UploadRow:
        with self._begin() as session:
            session.add(upload)
        return upload

    def upload(self, upload_id: str) -> UploadRow | None:
        with self._sessions() as session:
            return session.get(UploadRow, upload_id)
