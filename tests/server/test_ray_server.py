"""``videogen serve --ray local``: a real server whose jobs run on two Ray actors, over HTTP. Jobs run
at once, progress and cancel cross the cluster, and a killed actor costs its job one attempt."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import ServerProcess

from videogen.media.frames import read_video


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("ray-server") / "data"
    server = ServerProcess(data, models_dir, "--ray", "local", "--ray-workers", "2", "--max-attempts", "2")
    yield server.start(timeout=120)
    server.stop()


def descendants(pid: int) -> dict[int, str]:
    """The processes below ``pid``, by pid, with their command lines."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = {}, {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found.update({child: commands[child] for child in frontier})
    return found


def actor_pids(server: ServerProcess, running: bool = False) -> list[int]:
    """The server's actors (Ray names a process after the task it runs: ``ray::GenerationActor.run``)."""
    title = "ray::GenerationActor.run" if running else "ray::GenerationActor"
    return [pid for pid, command in descendants(server.process.pid).items() if command.startswith(title)]


def wait_until(condition, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_two_jobs_run_at_once_on_the_two_workers_and_their_videos_are_served(ray_server) -> None:
    wait_until(lambda: len(actor_pids(ray_server)) == 2)
    jobs = [ray_server.submit(steps=150, seed=seed)["id"] for seed in (1, 2)]
    wait_until(
        lambda: all(ray_server.client.get(f"/v1/jobs/{job}").json()["status"] == "running" for job in jobs)
    )
    stepping = lambda kind, data: kind == "progress" and data["stage"] == "denoise" and data["step"] > 0  # noqa: E731
    progress = ray_server.events(jobs[0], until=stepping)[-1][1]  # streamed from its actor
    assert progress["total"] == 150 and progress["eta"] is not None
    for job in jobs:
        done = ray_server.events(job)[-1][1]
        assert done["status"] == "succeeded" and done["attempts"] == 1
        video = ray_server.client.get(done["outputs"][0]["urls"]["mp4"])
        assert video.status_code == 200
        path = ray_server.data_dir.parent / f"{job}.mp4"
        path.write_bytes(video.content)
        assert len(read_video(path)[0]) == 8


def test_cancel_reaches_the_job_on_its_actor(ray_server) -> None:
    job = ray_server.submit(steps=500)["id"]
    ray_server.events(job, until=lambda kind, data: kind == "progress" and data["step"] >= 2)
    assert ray_server.client.post(f"/v1/jobs/{job}/cancel").status_code in (200, 202)
    cancelled = ray_server.wait_for(job, {"cancelled", "succeeded", "failed"}, timeout=60)
    assert cancelled["status"] == "cancelled" and cancelled["progress"]["step"] < 500


def test_a_killed_actor_costs_its_job_one_attempt_and_is_replaced(ray_server) -> None:
    job = ray_server.submit(steps=60, seed=9)["id"]
    ray_server.events(job, until=lambda kind, data: kind == "progress" and data["step"] >= 2)
    (running,) = actor_pids(ray_server, running=True)
    os.kill(running, signal.SIGKILL)
    finished = ray_server.wait_for(job, {"succeeded", "failed", "cancelled"}, timeout=120)
    assert finished["status"] == "succeeded" and finished["attempts"] == 2, finished
    wait_until(lambda: len(actor_pids(ray_server)) == 2 and running not in actor_pids(ray_server))
