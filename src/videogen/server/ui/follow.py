"""Following jobs: what the page's timer refreshes every second.

The page keeps the ids of the jobs it submitted in the browser (``gr.BrowserState``), so a reload
or a second submit follows them all. Each tick renders the selected job (by default the newest
one the page submitted) with its live progress and preview, lists the queue, and notes the newest
finished job so the history refreshes itself when one ends. What the page already shows is not
sent again (a video re-sent would restart playing).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from videogen.server.schemas import JobOut
from videogen.server.service import JobService
from videogen.server.ui.files import job_files, playable
from videogen.server.ui.jobs import ACTIVE, details_html, row_html, status_html

#: the jobs a page follows, newest last (older ones are still in the history)
MAX_TRACKED = 20
#: finished jobs that did not succeed, listed in the queue panel with their reasons
RECENT_ENDED = 10
#: running and queued jobs listed at most
MAX_ACTIVE = 50


@dataclass
class Panel:
    """The result panel's components, and the states the timer keeps up to date."""

    tracked: gr.BrowserState
    selected: gr.State
    shown: gr.State
    status: gr.HTML
    preview: gr.HTML
    video: gr.Video
    files: gr.File
    details: gr.HTML
    queue: gr.State
    newest_done: gr.State

    @property
    def tick_inputs(self) -> list[Any]:
        return [self.tracked, self.selected, self.shown]

    @property
    def tick_outputs(self) -> list[Any]:
        return [self.tracked, self.shown, self.status, self.preview, self.video, self.files, self.details,
                self.queue, self.newest_done]  # fmt: skip


def followed(tracked: list[str] | None, selected: str | None) -> str | None:
    """The job the result panel shows: the one picked, else the newest the page submitted."""
    if selected:
        return selected
    return tracked[-1] if tracked else None


def preview_html(service: JobService, job: JobOut | None) -> str:
    """The running job's latest latent preview, or nothing."""
    if job is None or job.status != "running":
        return ""
    preview = service.preview(job.id)
    if preview is None:
        return ""
    caption = f"preview after step {preview.step}/{preview.total}"
    if job.progress is not None and job.progress.num_videos > 1:
        caption += f" of video {preview.video + 1}"
    return (
        f"<figure id='job-preview' data-step='{preview.step}'><img src='{preview.data_url}' "
        f"alt='{html.escape(caption)}'><figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def queue_rows(service: JobService, tracked: list[str], mine: dict[str, JobOut]) -> list[dict[str, Any]]:
    """The queue panel's rows, newest first: every queued and running job, the recent failed and
    cancelled ones, and the page's own jobs whatever their status."""
    jobs = {job.id: job for job in service.list(statuses=ACTIVE, limit=MAX_ACTIVE).jobs}
    ended = service.list(statuses=("failed", "cancelled"), limit=RECENT_ENDED).jobs
    jobs.update({job.id: job for job in ended})
    jobs.update(mine)
    ordered = sorted(jobs.values(), key=lambda job: job.created_at, reverse=True)
    return [{"id": job.id, "status": job.status, "html": row_html(job, job.id in tracked)} for job in ordered]


def tick(service: JobService, panel: Panel, tracked: list[str] | None, selected: str | None,
         shown: dict[str, Any] | None) -> dict[Any, Any]:  # fmt: skip
    """One refresh: only what changed since the last one is sent."""
    tracked = list(tracked or [])
    mine = {job_id: job for job_id in tracked if (job := service.find(job_id)) is not None}
    job_id = followed(tracked, selected)
    job = mine.get(job_id) if job_id in mine else (service.find(job_id) if job_id else None)
    done = job is not None and job.status == "succeeded"
    view = {
        "status": status_html(job, "The job was deleted." if job_id and job is None else ""),
        "preview": preview_html(service, job),
        "details": details_html(job),
        "video": playable(service, job) if done else None,
        "files": (job_files(service, job) or None) if done else None,
    }
    newest = service.list(statuses=("succeeded",), limit=1).jobs
    view["queue"] = queue_rows(service, tracked, mine)
    view["newest_done"] = newest[0].id if newest else None
    last = shown or {}
    components = {
        "status": panel.status,
        "preview": panel.preview,
        "details": panel.details,
        "video": panel.video,
        "files": panel.files,
        "queue": panel.queue,
        "newest_done": panel.newest_done,
    }
    updates: dict[Any, Any] = {
        components[key]: value for key, value in view.items() if last.get(key) != value
    }
    if list(mine) != tracked:  # deleted jobs are no longer followed
        updates[panel.tracked] = list(mine)
    updates[panel.shown] = view if updates else gr.skip()  # Gradio takes an empty dict for one value
    return updates
