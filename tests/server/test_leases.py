"""Several servers on one database: jobs are claimed with a lease that the owner renews, only the
owner writes to its running job, and recovery takes back only jobs whose lease expired.

The store rules run on SQLite and PostgreSQL; the servers are real ``videogen serve`` processes
sharing one PostgreSQL database and one data folder."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from server_helpers import SMALL

#: long enough on the tiny model that a second server starts while the first runs it
LONG = {"steps": 120}
#: a lease that outlasts a server's start-up, so taking the job over at start would show
KILLED_LEASE = 15


@pytest.fixture
def store(start_service, settings, database_url):
    service = start_service(replace(settings, database_url=database_url))
    for seed in range(3):
        service.submit({**SMALL, "seed": seed})
    return service.store


def test_a_live_lease_is_kept_and_only_its_owner_writes(store) -> None:
    job = store.claim_next("server-a", lease_seconds=30)
    assert job.lease_owner == "server-a" and job.lease_expires_at > datetime.now(timezone.utc)
    assert store.recover(max_attempts=3) == {"requeued": 0, "failed": 0, "cancelled": 0}
    assert store.renew_lease(job.id, "server-a", 30) is False  # still held, no cancel asked
    assert store.renew_lease(job.id, "server-b", 30) is None
    assert not store.transition(job.id, ["running"], "server-b", progress={"step": 9})
    assert not store.finish(job.id, "succeeded", "server-b", outputs=[])
    assert store.transition(job.id, ["running"], "server-a", progress={"step": 1})
    assert store.transition(job.id, ["running"], cancel_requested=True)  # the cancel route, any server
    assert store.renew_lease(job.id, "server-a", 30) is True  # so the owner learns of it
    assert store.finish(job.id, "cancelled", "server-a")
    assert store.job(job.id).status == "cancelled"


def test_an_expired_lease_is_recovered_and_its_old_owner_cannot_write(store) -> None:
    job = store.claim_next("server-a", lease_seconds=0.5)
    live = store.claim_next("server-c", lease_seconds=30)
    time.sleep(0.7)
    assert store.recover(max_attempts=3) == {"requeued": 1, "failed": 0, "cancelled": 0}
    assert store.job(live.id).status == "running"  # another owner's live lease is left alone
    requeued = store.job(job.id)
    assert requeued.status == "queued" and requeued.lease_owner is None
    assert store.renew_lease(job.id, "server-a", 30) is None
    again = store.claim_next("server-b", lease_seconds=30)
    assert again.id == job.id and again.attempts == 2
    assert not store.transition(job.id, ["running"], "server-a", progress={"step": 3})
    assert not store.finish(job.id, "succeeded", "server-a", outputs=[{"late": True}])
    assert store.finish(job.id, "succeeded", "server-b", outputs=[])
    assert store.job(job.id).outputs == []


def test_a_dead_owners_lease_is_recovered_before_it_expires(store) -> None:
    job = store.claim_next("server-a", lease_seconds=30)
    assert store.running_owners() == {"server-a"}
    assert store.recover(max_attempts=3, dead_owners=["server-a"])["requeued"] == 1
    assert store.job(job.id).status == "queued"


def mp4s(server, job_id: str) -> list[str]:
    return sorted(path.name for path in (server.data_dir / "outputs" / job_id).glob("*.mp4"))


def test_a_second_server_leaves_a_live_servers_job_alone(postgres_url, spawn_server) -> None:
    first = spawn_server("--database-url", postgres_url)
    job = first.submit(**LONG, seed=3)
    other = first.submit(steps=400, seed=4)  # waits in the queue while the first server is busy
    first.events(job["id"], until=lambda kind, data: kind == "progress" and data["step"] >= 2)

    second = spawn_server("--database-url", postgres_url)
    running = second.client.get(f"/v1/jobs/{job['id']}").json()
    assert running["status"] == "running" and running["attempts"] == 1, "the job ended too soon to test"
    # The second server takes the queued job, and a cancel sent to the first server reaches it.
    second.wait_for(other["id"], {"running"})
    assert first.client.post(f"/v1/jobs/{other['id']}/cancel").status_code == 202
    assert second.wait_for(other["id"], {"cancelled"}, timeout=15)["attempts"] == 1

    done = first.wait_for(job["id"], {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded" and done["attempts"] == 1
    assert len(done["outputs"]) == 1 and mp4s(first, job["id"]) == [done["outputs"][0]["files"]["mp4"]]


def test_a_killed_servers_job_is_run_by_the_survivor_after_its_lease_expires(
    postgres_url, spawn_server
) -> None:
    first = spawn_server("--database-url", postgres_url, "--lease-seconds", str(KILLED_LEASE))
    job = first.submit(steps=30, seed=5)
    first.events(job["id"], until=lambda kind, data: kind == "progress" and data["step"] >= 2)
    first.kill(reap=False)  # its pid lives on, so only the lease's expiry frees the job
    killed = datetime.now(timezone.utc)

    second = spawn_server("--database-url", postgres_url, "--lease-seconds", "3")
    done = second.wait_for(job["id"], {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    # Not at the second server's start but when the lease ran out (the last heartbeat came at most
    # a second before the kill), found by its recovery every second while it waits for work.
    waited = (datetime.fromisoformat(done["started_at"]) - killed).total_seconds()
    assert waited >= KILLED_LEASE - 1
    assert mp4s(second, job["id"]) == [done["outputs"][0]["files"]["mp4"]]
