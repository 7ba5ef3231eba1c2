"""The queue limit holds under concurrent submits: counting the queue and inserting a job are one
serialised step in the store, on SQLite and on PostgreSQL, against a real server process."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from server_helpers import SMALL

SUBMITS = 30
MAX_QUEUE = 5


@pytest.fixture(params=["sqlite", "postgresql"])
def queue_server(request: pytest.FixtureRequest):
    """A server that runs no jobs, so nothing leaves its queue."""
    options = ["--no-worker", "--max-queue", str(MAX_QUEUE)]
    if request.param == "postgresql":  # set up first, so the database outlives the server
        options += ["--database-url", request.getfixturevalue("postgres_url")]
    return request.getfixturevalue("spawn_server")(*options)


def test_concurrent_submits_never_overfill_the_queue(queue_server) -> None:
    start = threading.Barrier(SUBMITS)

    def submit(seed: int) -> httpx.Response:
        with httpx.Client(base_url=queue_server.url, timeout=60) as client:
            client.get("/healthz")  # connected before the barrier, so the posts arrive together
            start.wait()
            return client.post("/v1/jobs", json={**SMALL, "seed": seed})

    with ThreadPoolExecutor(SUBMITS) as pool:
        responses = list(pool.map(submit, range(SUBMITS)))

    codes = [response.status_code for response in responses]
    assert codes.count(202) == MAX_QUEUE and codes.count(429) == SUBMITS - MAX_QUEUE, codes
    refused = [response for response in responses if response.status_code == 429]
    assert all(int(response.headers["Retry-After"]) > 0 for response in refused)
    assert all("queue is full" in response.json()["error"] for response in refused)
    queued = queue_server.client.get("/v1/jobs", params={"status": "queued", "limit": 100}).json()["jobs"]
    assert len(queued) == MAX_QUEUE
