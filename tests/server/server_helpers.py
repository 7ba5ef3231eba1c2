"""Helpers for the server tests: test media, and a real ``videogen serve`` process to talk to."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from PIL import Image

from videogen.media.writers import write_mp4

#: small enough that a tiny-model job takes about a second on a CPU
SMALL = {"prompt": "a panda", "model": "tiny-unet3d", "num_frames": 8, "height": 64, "width": 64}


def png_bytes(width: int = 32, height: int = 24, colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` but holds no pixels: a decompression bomb's shape."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def gif_bytes(frames: int) -> bytes:
    images = [Image.new("RGB", (16, 16), (40 * n, 0, 0)) for n in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=100)
    return buffer.getvalue()


def mp4_bytes(tmp_path: Path, frames: int = 6) -> bytes:
    path = tmp_path / "clip.mp4"
    write_mp4(np.full((frames, 32, 48, 3), 128, np.uint8), path, 8.0)
    return path.read_bytes()


def flat_video(path: Path, frames: int, width: int, height: int, rate: int = 8) -> Path:
    """A one-colour H.264 clip, encoded from a single frame: a large clip costs little to make."""
    rgb = np.full((height, width, 3), (30, 120, 200), np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for number in range(frames):
            frame.pts = number
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def memory_kib(pid: int, key: str) -> int:
    """A line of /proc/<pid>/status in KiB: VmRSS (now) or VmHWM (peak since start or reset)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak_memory(pid: int) -> None:
    """Set the process's VmHWM back to its current RSS (Linux: "5" into clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(hub_cache: Path) -> dict[str, str]:
    """One CPU thread (fast and steady next to other processes) and no Hugging Face network."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(hub_cache),
        "HF_ENDPOINT": "http://127.0.0.1:9",
    }


class ServerProcess:
    """``python -m videogen serve`` in a child process, with an httpx client pointed at it."""

    def __init__(self, data_dir: Path, models_dir: Path, *options: str) -> None:
        self.data_dir, self.models_dir, self.options = data_dir, models_dir, options
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self.process: subprocess.Popen | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 60) -> ServerProcess:
        command = [sys.executable, "-m", "videogen", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--models-dir", str(self.models_dir), "--no-ui"]
        command += self.options
        with self.log.open("ab") as log:
            env = server_env(self.data_dir.parent / "hf-cache")
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                if self.client.get("/healthz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the server did not answer in {timeout} s:\n{self.log.read_text()}")

    def kill(self, reap: bool = True) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill.

        ``reap=False`` leaves a zombie whose pid still exists, so another server on this machine
        cannot tell from the pid that this one died, just as if it ran on another machine.
        """
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        if reap:
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.client.close()

    def submit(self, **fields: Any) -> dict[str, Any]:
        response = self.client.post("/v1/jobs", json={**SMALL, **fields})
        assert response.status_code == 202, response.text
        return response.json()

    def events(self, job_id: str, until: Callable[[str, dict], bool] | None = None) -> list[tuple[str, dict]]:
        """Read the job's event stream until ``until(type, data)`` holds or the stream ends."""
        events: list[tuple[str, dict]] = []
        with self.client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line.removeprefix("data: "))))
                    if until is not None and until(*events[-1]):
                        break
        return events

    def wait_for(self, job_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in statuses:
                return job
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} is still {job['status']}")
