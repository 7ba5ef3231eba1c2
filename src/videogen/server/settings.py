"""Server settings: where state lives, security, and server-wide limits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from videogen.cluster.connection import ClusterOptions


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/videogen`` (``~/.local/share/videogen``): the history outlives the working folder."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "videogen"


@dataclass(frozen=True)
class Settings:
    """Everything ``create_app`` needs. ``videogen serve`` fills it from its options."""

    data_dir: Path
    #: SQLAlchemy URL; None means SQLite at ``data_dir/videogen.db``
    database_url: str | None = None
    #: bearer token required on every route but /healthz; None leaves the API open
    api_key: str | None = None
    #: the address ``serve`` listens on: it decides which Host names are accepted (server/browser.py);
    #: None (an app built in-process, as tests do) checks no Host
    host: str | None = None
    #: Host names accepted besides the default ones; entries may be comma lists; ``*`` accepts any
    allowed_hosts: tuple[str, ...] = ()
    #: local diffusers-layout models offered by folder name
    models_dir: Path | None = None
    #: models loaded before the server takes requests
    preload: tuple[str, ...] = ()
    #: queued jobs beyond this are refused with 429
    max_queue: int = 100
    #: runs of one job (interrupted by a crash) before it is failed instead of retried
    max_attempts: int = 3
    #: seconds a worker's claim on a running job holds without a heartbeat (renewed every third of it);
    #: a server that dies holding a job frees it this long after its last heartbeat
    lease_seconds: float = 30.0
    #: loaded engines kept between jobs
    max_engines: int = 1
    max_upload_bytes: int = 200 * 2**20
    #: pixels of an uploaded image, or of one frame of an uploaded video
    max_upload_pixels: int = 50_000_000
    max_upload_frames: int = 600
    # Server-wide caps on top of each model's own limits.
    max_frames: int = 128
    max_side: int = 1280
    max_steps: int = 500
    max_videos: int = 8
    #: characters of a prompt or negative prompt
    max_prompt_chars: int = 4000
    #: False serves the API without running jobs (tests; a process that only submits)
    run_worker: bool = True
    #: mount the Gradio web UI at /ui
    ui: bool = True
    #: run jobs on a Ray cluster's actors instead of in this process (``videogen[ray]``)
    ray: ClusterOptions | None = None

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'videogen.db'}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def loras_dir(self) -> Path:
        """The LoRA files jobs may name (by file name): a client never gives the server a path."""
        return self.data_dir / "loras"

    def job_dir(self, job_id: str) -> Path:
        """Where one job's files go; clients never choose it."""
        return self.outputs_dir / job_id
