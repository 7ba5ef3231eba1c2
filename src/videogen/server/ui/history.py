"""The history: every finished video on this server, newest first, with a short caption."""

from __future__ import annotations

from videogen.server.service import JobService
from videogen.server.ui.files import playable

#: finished jobs shown at most
HISTORY_SIZE = 40


def history(service: JobService) -> tuple[list[tuple[str, str]], list[str]]:
    """Gallery items (video file, caption) and the job id of each."""
    items, ids = [], []
    for job in service.list(statuses=("succeeded",), limit=HISTORY_SIZE).jobs:
        path = playable(service, job)
        if path is not None:
            subject = (job.request.get("prompt") or "").strip() or job.model
            items.append((path, f"{job.model} · seed {job.seed} · {subject[:40]}"))
            ids.append(job.id)
    return items, ids
