"""Jobs as the page shows them: status and live progress, seed and settings, and the queue's rows.

Pure functions of ``JobOut`` that return HTML; every text from a job is escaped.
"""

from __future__ import annotations

import html
from typing import Any

from videogen.fields import upload_fields
from videogen.server.schemas import JobOut, Progress

#: statuses a job can still be cancelled in
ACTIVE = ("queued", "running")
#: the queue panel: jobs waiting or running, and the recent ones that did not succeed
QUEUE_STATUSES = ("queued", "running", "failed", "cancelled")


def seconds(value: float) -> str:
    """``4.2 s``, ``3 min 5 s``."""
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes} min {rest} s"


def progress_text(progress: Progress) -> str:
    """``denoise · step 3/10 · video 1/2 · 2.1 s elapsed · about 4.0 s left``."""
    parts = [progress.stage]
    if progress.total:
        parts.append(f"step {progress.step}/{progress.total}")
    if progress.num_videos > 1:
        parts.append(f"video {progress.video + 1}/{progress.num_videos}")
    parts.append(f"{seconds(progress.elapsed)} elapsed")
    if progress.eta is not None:
        parts.append(f"about {seconds(progress.eta)} left")
    return " · ".join(parts)


def status_html(job: JobOut | None, message: str = "") -> str:
    """The result panel's head: the job's status, its live progress, and why it failed."""
    if job is None:
        text = html.escape(message or "No job yet: fill in the form and press Generate.")
        return f"<div id='job-status' data-status='idle'>{text}</div>"
    parts = [f"<b id='job-state'>{job.status}</b> · job <code>{job.id}</code> · {html.escape(job.model)}"]
    progress = job.progress
    if job.status == "running" and progress is not None:
        bar = f"<progress id='job-progress' value='{progress.step}' max='{progress.total or 1}'></progress>"
        parts.append(f"{bar}<span id='job-progress-text'>{html.escape(progress_text(progress))}</span>")
    if job.status == "queued":
        parts.append("waiting for the worker")
    if job.cancel_requested and job.status == "running":
        parts.append("cancelling at the next step")
    if job.error:
        parts.append(f"<span class='job-error'>{html.escape(job.error)}</span>")
    if job.generation_seconds is not None:
        parts.append(f"made in {seconds(job.generation_seconds)}")
    body = "<br>".join(parts)
    return f"<div id='job-status' data-status='{job.status}' data-job='{job.id}'>{body}</div>"


#: fields whose resolved value is a server path (a model folder, an upload's file): shown as submitted
AS_SUBMITTED = ("model", "upscale", *upload_fields())


def settings_of(job: JobOut) -> dict[str, Any]:
    """The settings a job ran with: the resolved request of its first video (every default filled
    in), or the request as submitted while it has no video."""
    if not job.outputs:
        return dict(job.request)
    resolved = dict(job.outputs[0].metadata.get("request") or job.request)
    return resolved | {name: job.request.get(name) for name in AS_SUBMITTED}


def details_html(job: JobOut | None) -> str:
    """Seed and full settings of the selected job, as a two-column list."""
    if job is None:
        return "<div id='job-details'></div>"
    extra = " (chosen at random)" if job.seed_was_random else ""
    if len(job.outputs) > 1:
        extra += "; video k uses seed + k"
    rows = "".join(
        f"<dt>{html.escape(name)}</dt><dd>{html.escape(_shown(value))}</dd>"
        for name, value in settings_of(job).items()
        if value is not None and name != "out_dir"
    )
    seed = f"<p>Seed <b id='job-seed'>{job.seed}</b>{html.escape(extra)}</p>"
    return f"<div id='job-details' data-seed='{job.seed}'>{seed}<dl class='settings'>{rows}</dl></div>"


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def row_html(job: JobOut, mine: bool) -> str:
    """One queue row: status, model, prompt and, for a job that did not succeed, why."""
    prompt = (job.request.get("prompt") or "").strip()
    text = [f"<b>{job.status}</b>", html.escape(job.model), f"<code>{job.id[:8]}</code>"]
    if mine:
        text.append("yours")
    line = " · ".join(text)
    if prompt:
        line += f"<br><i>{html.escape(prompt[:80])}</i>"
    if job.error:
        line += f"<br><span class='job-error'>{html.escape(job.error)}</span>"
    elif job.status == "cancelled":
        line += "<br><span class='job-error'>cancelled</span>"
    return f"<div class='queue-row' data-job='{job.id}' data-status='{job.status}'>{line}</div>"
