"""Partial files are never served: a job's files are those its record lists, and what an
interrupted attempt left (staged ``.tmp-*`` files, empty reserved sidecars) is removed."""

from __future__ import annotations

from pathlib import Path


def plant_partial_files(folder: Path) -> list[str]:
    """What a kill while writing leaves: a staged, half-written mp4 and the empty reserved sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".tmp-0a1b2c3d-cut.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom")
    (folder / "cut.json").touch()
    return [".tmp-0a1b2c3d-cut.mp4", "cut.json"]


def test_only_the_recorded_outputs_of_a_job_are_served(spawn_server) -> None:
    server = spawn_server()
    job = server.submit(steps=2, formats=["mp4", "frames"])
    (video,) = server.events(job["id"])[-1][1]["outputs"]
    folder = server.data_dir / "outputs" / job["id"]
    files = f"/v1/jobs/{job['id']}/files"
    frames = video["files"]["frames"]
    planted = plant_partial_files(folder)
    (folder / frames / ".tmp-0a1b2c3d-0001.png").write_bytes(b"partial")

    for name in [*planted, f"{frames}/.tmp-0a1b2c3d-0001.png"]:
        assert server.client.get(f"{files}/{name}").status_code == 404, name
    assert server.client.get(f"{files}/{video['files']['mp4']}").status_code == 200
    sidecar = server.client.get(f"{files}/{video['files']['sidecar']}")
    assert sidecar.status_code == 200 and sidecar.json()["outputs"]["mp4"] == video["files"]["mp4"]
    first_frame = sorted(path.name for path in (folder / frames).glob("[!.]*.png"))[0]
    frame = server.client.get(f"{files}/{frames}/{first_frame}")
    assert frame.status_code == 200 and frame.content == (folder / frames / first_frame).read_bytes()


def test_a_restart_removes_what_a_killed_job_left(spawn_server) -> None:
    first = spawn_server("--max-attempts", "1")
    done = first.submit(steps=2)
    recorded = set(first.events(done["id"])[-1][1]["outputs"][0]["files"].values())
    doomed = first.submit(steps=200)
    first.events(doomed["id"], until=lambda kind, data: kind == "progress" and data["step"] >= 2)
    outputs = first.data_dir / "outputs"
    plant_partial_files(outputs / doomed["id"])
    plant_partial_files(outputs / done["id"])
    first.kill()

    second = spawn_server("--max-attempts", "1")
    failed = second.client.get(f"/v1/jobs/{doomed['id']}").json()
    assert failed["status"] == "failed" and "interrupted" in failed["error"]
    assert not (outputs / doomed["id"]).exists()
    assert {path.name for path in (outputs / done["id"]).iterdir()} == recorded
