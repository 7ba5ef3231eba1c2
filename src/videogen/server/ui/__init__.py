"""The web UI (Gradio), mounted at /ui in the API's app.

It submits, watches and cancels through the same ``JobService`` as the REST routes, so UI jobs
are in the job store, the queue and the history like any other, and survive restarts. The form is
built from the Request fields' metadata (``form.py``); the page follows the jobs it submitted
across reloads (``follow.py``).

Modules: ``models`` (the model dropdown), ``controls`` (one control per field), ``form`` (the
form), ``jobs`` (jobs as HTML), ``files`` (the files shown), ``follow`` (the timer), ``history``.
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from typing import Any

import gradio as gr

from videogen.data import default_prompts, default_stills
from videogen.errors import UserError
from videogen.server.errors import ApiError, user_error_field
from videogen.server.redact import redact_paths
from videogen.server.service import JobService
from videogen.server.ui.files import upload_path
from videogen.server.ui.follow import MAX_TRACKED, Panel, followed, tick
from videogen.server.ui.form import UPLOADS, Form, build_form
from videogen.server.ui.history import history
from videogen.server.ui.jobs import ACTIVE, status_html
from videogen.server.ui.models import offered_models

__all__ = ["build_ui", "mount_ui"]

#: BrowserState encrypts what it stores with this; the job ids it keeps are no secret (anyone who
#: can open the page can list the jobs), and a fixed key keeps them readable across restarts
BROWSER_KEY = "videogen-ui-followed-jobs"
#: how often the page refreshes its jobs, in seconds
TICK_SECONDS = 1.0
CSS = """
.settings { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0 0.8em; margin: 0; }
.settings dd { margin: 0; }
#job-status, .queue-row, .settings, .field-error { overflow-wrap: anywhere; }
.field-error, .job-error { color: var(--error-text-color, #b91c1c); white-space: pre-line; }
#job-preview { margin: 0; }
#job-preview img { width: 100%; max-width: 384px; image-rendering: pixelated; }
#job-status progress { width: 100%; }
"""


def build_ui(service: JobService) -> gr.Blocks:
    """The whole UI: the form, the selected job, the queue and the history."""
    with gr.Blocks(title="videogen") as ui:
        gr.Markdown("# videogen\nText, image and video to video with open models.")
        tracked = gr.BrowserState([], storage_key=BROWSER_KEY, secret=BROWSER_KEY)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                form = build_form(offered_models(service.settings.models_dir))
                _examples(form)
            with gr.Column(scale=1, min_width=300):
                panel = _result_panel(tracked)
                actions = _actions()
                gr.Markdown("## Queue")
                _queue_panel(service, panel, actions["message"])
        gr.Markdown("## History")
        gallery = gr.Gallery(label="Finished videos", columns=3, elem_id="history", allow_preview=True)
        history_ids = gr.State([])
        _wire(ui, service, form, panel, actions, gallery, history_ids)
    return ui


def _result_panel(tracked: gr.BrowserState) -> Panel:
    gr.Markdown("## Result")
    status = gr.HTML(status_html(None), elem_id="job-panel")
    preview = gr.HTML("", elem_id="preview-panel")
    video = gr.Video(label="Video", interactive=False, elem_id="job-video")
    files = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="job-files")
    with gr.Accordion("Seed and settings", open=True):
        details = gr.HTML("", elem_id="details-panel")
    states = (gr.State(None), gr.State(None), gr.State([]), gr.State(None))
    selected, shown, queue, newest_done = states
    return Panel(tracked, selected, shown, status, preview, video, files, details, queue, newest_done)


def _actions() -> dict[str, Any]:
    with gr.Row():
        buttons = {
            "reuse": gr.Button("Reuse seed", size="sm", elem_id="reuse-seed"),
            "load": gr.Button("Load into form", size="sm", elem_id="load-into-form"),
            "cancel": gr.Button("Cancel", size="sm", variant="stop", elem_id="cancel-job"),
        }
    buttons["message"] = gr.HTML("", elem_id="action-message")
    return buttons


def _examples(form: Form) -> None:
    """Prompts and still images to start from (the ones ``videogen compare`` uses)."""
    prompt = form.controls["prompt"].component
    prompts = [[text] for text in default_prompts()]
    gr.Examples(prompts, [prompt], label="Example prompts", examples_per_page=5)
    stills = [[str(still)] for still in default_stills()]
    gr.Examples(stills, [form.controls["image"].component], label="Example images")


def _queue_panel(service: JobService, panel: Panel, message: gr.HTML) -> None:
    """Queued, running, failed and cancelled jobs (and the page's own), each with its buttons;
    drawn again only when a job's status changes."""

    @gr.render(inputs=panel.queue)
    def draw(rows: list[dict[str, Any]]) -> None:
        if not rows:
            gr.HTML("<p id='queue-empty'>No job is queued or running.</p>")
        for row in rows:
            with gr.Row(equal_height=True):
                gr.HTML(row["html"], scale=4)
                show = gr.Button("Show", size="sm", scale=0, min_width=70, elem_id=f"show-{row['id']}")
                show.click(lambda job_id=row["id"]: job_id, None, panel.selected)
                if row["status"] in ACTIVE:
                    cancel = gr.Button(
                        "Cancel",
                        size="sm",
                        scale=0,
                        min_width=70,
                        variant="stop",
                        elem_id=f"cancel-{row['id']}",
                    )
                    cancel.click(lambda job_id=row["id"]: _cancel(service, job_id), None, message)


def _wire(ui: gr.Blocks, service: JobService, form: Form, panel: Panel, actions: dict[str, Any],
          gallery: gr.Gallery, history_ids: gr.State) -> None:  # fmt: skip
    """Every event: the model's look, submit, the timer, the history and the result's buttons."""
    quiet: dict[str, Any] = {"show_progress": "hidden", "concurrency_limit": None}
    form.model.change(form.look_for, form.model, form.look, **quiet)
    form.submit.click(
        lambda values: _submit(service, form, panel, values),
        form.inputs | {panel.tracked},
        [panel.tracked, panel.selected, panel.status, form.error],
        concurrency_limit=None,
    )
    timer = gr.Timer(TICK_SECONDS)
    timer.tick(lambda *state: tick(service, panel, *state), panel.tick_inputs, panel.tick_outputs, **quiet)

    def refresh_history() -> tuple[list[tuple[str, str]], list[str]]:
        return history(service)

    panel.newest_done.change(refresh_history, None, [gallery, history_ids], **quiet)
    ui.load(refresh_history, None, [gallery, history_ids], **quiet)
    ui.load(lambda: _refresh_models(service, form), None, form.model, **quiet)
    gallery.select(_picked, history_ids, panel.selected, **quiet)
    picked = [panel.tracked, panel.selected]
    seed = form.controls["seed"].component
    actions["reuse"].click(lambda *ids: _reuse_seed(service, followed(*ids)), picked, seed)
    actions["load"].click(
        lambda *ids: _load(service, form, followed(*ids)), picked, [*form.inputs, form.error]
    )
    actions["cancel"].click(lambda *ids: _cancel(service, followed(*ids)), picked, actions["message"])


def _submit(service: JobService, form: Form, panel: Panel, values: dict[Any, Any]) -> dict[Any, Any]:
    """Queue the form's request (its files uploaded first) and follow the new job."""
    fields = form.request_fields(values)
    try:
        for name in UPLOADS:
            if name in fields:
                with open(fields[name], "rb") as source:
                    fields[name] = service.upload(source, Path(fields[name]).name).id
        job, _ = service.submit(fields)
    except ApiError as exc:
        return {form.error: _error_html(exc.detail, exc.field)}
    except UserError as exc:
        return {form.error: _error_html(redact_paths(str(exc), service.settings), user_error_field(exc))}
    tracked = [*(values[panel.tracked] or []), job.id][-MAX_TRACKED:]
    return {panel.tracked: tracked, panel.selected: job.id, panel.status: status_html(job), form.error: ""}


def _error_html(message: str, field: str | None) -> str:
    """The refusal as the REST API words it, naming the field."""
    where = f" data-field='{html.escape(field)}'" if field else ""
    return f"<div class='field-error' role='alert'{where}>{html.escape(message)}</div>"


def _refresh_models(service: JobService, form: Form) -> Any:
    """Offer the models as they are now: weights may have been downloaded since the server started."""
    form.models = offered_models(service.settings.models_dir)
    return gr.update(choices=[(model.label, model.id) for model in form.models.values()])


def _picked(ids: list[str], event: gr.SelectData) -> str | None:
    return ids[event.index] if isinstance(event.index, int) and event.index < len(ids) else None


def _reuse_seed(service: JobService, job_id: str | None) -> Any:
    job = service.find(job_id) if job_id else None
    return gr.skip() if job is None else str(job.seed)


def _load(service: JobService, form: Form, job_id: str | None) -> dict[Any, Any]:
    """Fill the form from the job's request (its seed included), to edit and run again."""
    job = service.find(job_id) if job_id else None
    if job is None:
        return {form.error: _error_html("Pick a job first: a result, a queue row or a history item.", None)}
    files = {name: upload_path(service, job.request.get(name)) for name in UPLOADS}
    values = form.filled_from(job.request, files)
    missing = [name for name in UPLOADS if job.request.get(name) and files[name] is None]
    note = _error_html(f"The {' and '.join(missing)} of job {job.id} is no longer on the server.", None)
    return {**values, form.error: note if missing else ""}


def _cancel(service: JobService, job_id: str | None) -> str:
    """Cancel a queued job at once, a running one at its next step; say which."""
    if job_id is None:
        return "<p>No job to cancel.</p>"
    try:
        job = service.cancel(job_id)
    except ApiError as exc:
        return f"<p class='job-error'>{html.escape(exc.detail)}</p>"
    done = "is cancelled" if job.status == "cancelled" else "stops at its next step"
    return f"<p id='cancel-message' data-job='{job.id}'>Job <code>{job.id}</code> {done}.</p>"


def mount_ui(app: Any, service: JobService) -> Any:
    """Mount the UI at /ui, allowing Gradio to serve the jobs' files, the uploads and the examples."""
    settings = service.settings
    stills = str(resources.files("videogen.data").joinpath("stills"))
    allowed = [str(settings.outputs_dir), str(settings.uploads_dir), stills]
    return gr.mount_gradio_app(app, build_ui(service), path="/ui", allowed_paths=allowed, css=CSS)
