"""The server files the page shows: a job's videos, and the uploaded inputs of a recorded request."""

from __future__ import annotations

from pathlib import Path

from videogen.server.errors import ApiError
from videogen.server.schemas import FOLDER_KINDS, JobOut
from videogen.server.service import JobService
from videogen.server.store import is_id

#: the kinds of output a video player plays, best first
PLAYABLE = ("mp4", "webm")


def job_files(service: JobService, job: JobOut) -> list[str]:
    """Every file the job wrote (videos and sidecars; not folders of frames), video by video."""
    paths = []
    for video in job.outputs:
        for kind, path in video.files.items():
            if kind not in FOLDER_KINDS:
                try:
                    paths.append(str(service.output_file(job.id, path)))
                except ApiError:  # deleted meanwhile
                    continue
    return paths


def playable(service: JobService, job: JobOut) -> str | None:
    """The job's first video in a format the browser plays, if it wrote one."""
    for video in job.outputs:
        for kind in PLAYABLE:
            if kind in video.files:
                try:
                    return str(service.output_file(job.id, video.files[kind]))
                except ApiError:
                    return None
    return None


def upload_path(service: JobService, upload_id: object) -> str | None:
    """The stored file of an upload id from a recorded request (None when it is gone)."""
    if not isinstance(upload_id, str) or not is_id(upload_id):
        return None
    row = service.store.upload(upload_id)
    if row is None:
        return None
    path = service.settings.uploads_dir / row.stored_name
    return str(path) if Path(path).is_file() else None
