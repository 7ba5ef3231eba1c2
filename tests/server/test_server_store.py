"""The job store and JobService on SQLite and on PostgreSQL: schema, queue order, conditional status
changes, crash recovery, idempotency and concurrent submissions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from server_helpers import SMALL

from videogen.server.database import migrate
from videogen.server.errors import ApiError
from videogen.server.store import Base


@pytest.fixture
def service(start_service, settings, database_url):
    return start_service(replace(settings, database_url=database_url))


def test_migrations_build_exactly_the_models_schema(service) -> None:
    migrate(service.store.engine)  # a second run changes nothing
    with service.store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, Base.metadata) == []


def test_sqlite_store_is_in_wal_mode(start_service, settings) -> None:
    service = start_service(settings)
    with service.store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert (settings.data_dir / "videogen.db").is_file()


def test_a_job_keeps_its_request_seed_and_timestamps(service) -> None:
    job, created = service.submit({**SMALL, "steps": 3, "seed": 5})
    assert created and job.status == "queued" and not job.seed_was_random
    stored = service.get(job.id)
    assert stored.request["steps"] == 3 and stored.seed == 5 and stored.request["prompt"] == SMALL["prompt"]
    assert "out_dir" not in stored.request
    assert stored.created_at.tzinfo == timezone.utc
    unseeded, _ = service.submit(SMALL)
    assert unseeded.seed_was_random and unseeded.request["seed"] == unseeded.seed


def test_list_is_newest_first_with_filters_and_cursor_pages(service) -> None:
    ids = [service.submit({**SMALL, "seed": seed})[0].id for seed in range(5)]
    service.cancel(ids[1])
    first = service.list(limit=2)
    assert [job.id for job in first.jobs] == [ids[4], ids[3]] and first.next_cursor
    second = service.list(limit=2, cursor=first.next_cursor)
    assert [job.id for job in second.jobs] == [ids[2], ids[1]]
    last = service.list(limit=2, cursor=second.next_cursor)
    assert [job.id for job in last.jobs] == [ids[0]] and last.next_cursor is None
    assert [job.id for job in service.list(["cancelled"]).jobs] == [ids[1]]
    assert len(service.list(["queued"], model="tiny-unet3d").jobs) == 4
    assert service.list(model="modelscope-t2v").jobs == []


def test_jobs_are_claimed_oldest_first_and_status_changes_are_conditional(service) -> None:
    store = service.store
    first, second = (service.submit({**SMALL, "seed": seed})[0] for seed in (1, 2))
    claimed = store.claim_next()
    assert claimed.id == first.id and claimed.status == "running" and claimed.attempts == 1
    assert not store.transition(first.id, ["queued"], status="cancelled")  # the worker won
    assert service.cancel(second.id).status == "cancelled"
    assert store.claim_next() is None  # the cancelled job is never claimed
    assert store.finish(first.id, "succeeded", outputs=[])
    assert not store.finish(first.id, "failed", error="late")
    with pytest.raises(ApiError) as err:
        service.cancel(first.id)
    assert err.value.status_code == 409


def test_recovery_requeues_fails_or_cancels_jobs_left_running(service) -> None:
    store = service.store
    requeue, give_up, cancel = (service.submit({**SMALL, "seed": seed})[0].id for seed in (1, 2, 3))
    for _ in range(3):
        store.claim_next()
    store.transition(give_up, ["running"], attempts=3)
    store.transition(cancel, ["running"], cancel_requested=True)
    assert store.recover(max_attempts=3) == {"requeued": 1, "failed": 1, "cancelled": 1}
    assert service.get(requeue).status == "queued" and service.get(requeue).attempts == 1
    failed = service.get(give_up)
    assert failed.status == "failed" and "interrupted" in failed.error and failed.finished_at
    assert service.get(cancel).status == "cancelled"


def test_idempotency_key_returns_the_first_job_and_refuses_another_body(service) -> None:
    job, created = service.submit({**SMALL, "seed": 7}, idempotency_key="order-1")
    again, created_again = service.submit({**SMALL, "seed": 7}, idempotency_key="order-1")
    assert created and not created_again and again.id == job.id
    with pytest.raises(ApiError) as err:
        service.submit({**SMALL, "seed": 8}, idempotency_key="order-1")
    assert err.value.status_code == 409 and err.value.field == "Idempotency-Key"


def test_50_concurrent_submissions_are_each_recorded_once(service) -> None:
    with ThreadPoolExecutor(max_workers=50) as pool:
        jobs = list(pool.map(lambda seed: service.submit({**SMALL, "seed": seed})[0], range(50)))
        same_key = list(pool.map(lambda _: service.submit({**SMALL, "seed": 99}, "once")[0], range(20)))
    assert len({job.id for job in jobs}) == 50
    listed = service.list(limit=100).jobs
    assert len(listed) == 51 and sorted(job.seed for job in listed) == [*range(50), 99]
    assert len({job.id for job in same_key}) == 1


def test_a_full_queue_refuses_with_429(start_service, settings, database_url) -> None:
    service = start_service(replace(settings, database_url=database_url, max_queue=2))
    service.submit(SMALL)
    service.submit(SMALL)
    with pytest.raises(ApiError) as err:
        service.submit(SMALL)
    assert err.value.status_code == 429 and err.value.headers["Retry-After"]


def test_delete_removes_record_and_files_but_not_a_running_job(service) -> None:
    job, _ = service.submit(SMALL)
    folder = service.settings.job_dir(job.id)
    folder.mkdir(parents=True)
    (folder / "video.mp4").write_bytes(b"x")
    service.delete(job.id)
    assert service.find(job.id) is None and not folder.exists()
    running, _ = service.submit(SMALL)
    service.store.claim_next()
    with pytest.raises(ApiError) as err:
        service.delete(running.id)
    assert err.value.status_code == 409
