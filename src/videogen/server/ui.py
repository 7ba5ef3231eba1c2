"""The web UI (Gradio), mounted at /ui in the API's app.

It submits, watches and cancels through the same ``JobService`` as the REST routes, so UI jobs
are in the job store, the queue and the history like any other, and survive restarts.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from videogen.errors import UserError
from videogen.server.errors import ApiError
from videogen.server.schemas import JobOut, ModelOut
from videogen.server.service import JobService

#: tab name -> (which models it offers, whether an input image is needed)
TASKS: dict[str, tuple[Callable[[ModelOut], bool], bool]] = {
    "Text to video": (lambda m: m.family == "unet3d", False),
    "Image + prompt to video": (lambda m: m.family == "unet3d", True),
    "SVD image to video": (lambda m: m.family == "svd" and not m.orbit, True),
    "SV3D orbit": (lambda m: m.family == "svd" and m.orbit, True),
}
#: number fields where Gradio's empty value (0) means "the model's default"
ZERO_IS_DEFAULT = ("num_frames", "height", "width", "steps", "guidance", "min_guidance", "max_guidance",
                   "decode_chunk_size", "elevations")  # fmt: skip


def build_ui(service: JobService) -> gr.Blocks:
    """The whole UI: one form per task, a live job panel, and the history gallery."""
    models = sorted(service.models(), key=lambda m: not m.local)  # the server's own folders first
    with gr.Blocks(title="videogen") as ui:
        gr.Markdown("# videogen\nText, image and video to video with open models.")
        job_id = gr.State(None)
        forms = []
        with gr.Tabs():
            for tab, (offers, needs_image) in TASKS.items():
                with gr.Tab(tab):
                    forms.append(_form(tab, [m.id for m in models if offers(m)], needs_image))
        with gr.Group():
            status = gr.HTML("<p id='job-status'>No job yet.</p>", elem_id="job-panel")
            with gr.Row():
                video = gr.Video(label="Result", elem_id="job-video", interactive=False)
                cancel = gr.Button("Cancel", variant="stop", elem_id="cancel-button")
        gr.Markdown("## History")
        gallery = gr.Gallery(label="Finished videos", columns=4, elem_id="history", allow_preview=True)
        with gr.Row():
            refresh = gr.Button("Refresh history", elem_id="refresh-history")
            rerun = gr.Button("Re-run selected", elem_id="rerun-button")
        params = gr.JSON(label="Parameters of the selected video", elem_id="history-params")
        history_ids = gr.State([])
        selected = gr.State(None)

        for form in forms:
            form["submit"].click(
                lambda *values, f=form: _submit(service, f, values), form["inputs"], [job_id, status]
            )
        timer = gr.Timer(1.0)
        timer.tick(lambda jid: _poll(service, jid), job_id, [status, video])
        cancel.click(lambda jid: _cancel(service, jid), job_id, status)
        refresh.click(lambda: _history(service), None, [gallery, history_ids])
        ui.load(lambda: _history(service), None, [gallery, history_ids])
        gallery.select(_select(service), history_ids, [params, selected])
        rerun.click(lambda jid: _rerun(service, jid), selected, [job_id, status])
    return ui


def _form(tab: str, choices: list[str], needs_image: bool) -> dict[str, Any]:
    """One task's controls; family options sit in collapsible groups."""
    key = tab.lower().replace(" ", "-").replace("+", "plus")
    inputs: dict[str, gr.components.Component] = {}
    inputs["model"] = gr.Dropdown(choices, value=choices[0] if choices else None, label="Model")
    if needs_image:
        inputs["image"] = gr.Image(type="filepath", label="Image", image_mode=None)
    if tab in ("Text to video", "Image + prompt to video"):
        inputs["prompt"] = gr.Textbox(label="Prompt", lines=2, elem_id=f"{key}-prompt")
        inputs["negative_prompt"] = gr.Textbox(label="Negative prompt")
    with gr.Accordion("Shape and sampling", open=False):
        inputs["num_frames"] = gr.Number(
            value=None, label="Frames (empty: model default)", precision=0, elem_id=f"{key}-frames"
        )
        with gr.Row():
            inputs["height"] = gr.Number(value=None, label="Height", precision=0, elem_id=f"{key}-height")
            inputs["width"] = gr.Number(value=None, label="Width", precision=0, elem_id=f"{key}-width")
        inputs["steps"] = gr.Number(value=None, label="Steps", precision=0, elem_id=f"{key}-steps")
        inputs["seed"] = gr.Textbox(label="Seed (empty: random)")
        if tab in ("Text to video", "Image + prompt to video"):
            inputs["guidance"] = gr.Number(value=None, label="Guidance")
            inputs["scheduler"] = gr.Dropdown(
                ["ddim", "dpm++", "euler", "unipc"], value="ddim", label="Scheduler"
            )
    if tab == "Image + prompt to video":
        with gr.Accordion("Image conditioning", open=True):
            inputs["strength"] = gr.Slider(0.05, 1.0, value=0.7, step=0.05, label="Strength")
            inputs["noise_mode"] = gr.Radio(
                ["independent", "shared", "mixed"], value="independent", label="Noise"
            )
            inputs["noise_mix"] = gr.Slider(0, 1, value=0.5, step=0.05, label="Shared part (mixed)")
            inputs["pin_first_frame"] = gr.Checkbox(label="Pin the first frame to the image")
            inputs["fit"] = gr.Radio(["crop", "pad", "stretch"], value="crop", label="Fit")
    if tab == "SVD image to video":
        with gr.Accordion("Stable Video Diffusion", open=True):
            inputs["motion_bucket_id"] = gr.Slider(0, 255, value=127, step=1, label="Motion bucket")
            inputs["cond_fps"] = gr.Number(value=6, label="Conditioning fps")
            inputs["noise_aug_strength"] = gr.Number(value=0.02, label="Noise augmentation")
            with gr.Row():
                inputs["min_guidance"] = gr.Number(value=None, label="Min guidance")
                inputs["max_guidance"] = gr.Number(value=None, label="Max guidance")
            inputs["decode_chunk_size"] = gr.Number(value=None, label="Decode chunk size", precision=0)
    if tab == "SV3D orbit":
        with gr.Accordion("Orbit", open=True):
            inputs["camera_path"] = gr.Dropdown(
                ["orbit", "wave", "spiral", "front-back"], value=None, label="Camera"
            )
            inputs["elevations"] = gr.Number(value=None, label="Elevation (degrees)")
            inputs["remove_background"] = gr.Checkbox(value=True, label="Remove background")
    submit = gr.Button("Generate", variant="primary", elem_id=f"{key}-generate")
    return {"names": list(inputs), "inputs": list(inputs.values()), "submit": submit}


def _submit(service: JobService, form: dict[str, Any], values: tuple) -> tuple[str | None, str]:
    """Turn the form into a request (empty fields take the model's defaults) and queue it."""
    given = zip(form["names"], values, strict=True)
    fields = {
        name: value
        for name, value in given
        if value not in (None, "") and not (name in ZERO_IS_DEFAULT and value == 0)
    }
    try:
        if "image" in fields:
            with open(fields["image"], "rb") as source:
                fields["image"] = service.upload(source, Path(fields["image"]).name).id
        if "elevations" in fields:
            fields["elevations"] = [fields["elevations"]]
        job, _ = service.submit(fields)
    except (UserError, ApiError) as exc:
        return None, _status_html("error", html.escape(str(exc)))
    return job.id, _job_html(job)


def _poll(service: JobService, job_id: str | None) -> tuple[Any, Any]:
    """Refresh the job panel; show the video once the job has finished."""
    if job_id is None:
        return gr.skip(), gr.skip()
    job = service.find(job_id)
    if job is None:
        return _status_html("deleted", "The job was deleted."), None
    video = _video_path(service, job) if job.status == "succeeded" else None
    return _job_html(job), video


def _cancel(service: JobService, job_id: str | None) -> str:
    if job_id is None:
        return _status_html("idle", "No job to cancel.")
    try:
        return _job_html(service.cancel(job_id))
    except ApiError as exc:
        return _status_html("error", html.escape(str(exc)))


def _history(service: JobService) -> tuple[list[tuple[str, str]], list[str]]:
    """Finished videos, newest first, with a short caption each."""
    items, ids = [], []
    for job in service.list(statuses=["succeeded"], limit=40).jobs:
        path = _video_path(service, job)
        if path is not None:
            prompt = job.request.get("prompt") or job.model
            items.append((path, f"{job.model} · seed {job.seed} · {prompt[:40]}"))
            ids.append(job.id)
    return items, ids


def _select(service: JobService):
    def on_select(ids: list[str], event: gr.SelectData) -> tuple[dict, str | None]:
        job = service.find(ids[event.index]) if event.index < len(ids) else None
        if job is None:
            return {}, None
        return {"job": job.id, "model": job.model, **job.request}, job.id

    return on_select


def _rerun(service: JobService, job_id: str | None) -> tuple[str | None, str]:
    """Queue the selected job's request again, with the same seed."""
    job = service.find(job_id) if job_id else None
    if job is None:
        return None, _status_html("idle", "Select a video in the history first.")
    again, _ = service.submit(job.request)
    return again.id, _job_html(again)


def _video_path(service: JobService, job: JobOut) -> str | None:
    for output in job.outputs:
        if "mp4" in output.files:
            return str(service.output_file(job.id, output.files["mp4"]))
    return None


def _job_html(job: JobOut) -> str:
    progress = job.progress
    bar = ""
    if progress is not None and progress.total:
        bar = f"<progress id='job-progress' value='{progress.step}' max='{progress.total}'></progress> "
        bar += f"step {progress.step}/{progress.total} ({html.escape(progress.stage)})"
    detail = html.escape(job.error) if job.error else ""
    text = f"job {job.id}: <b id='job-state'>{job.status}</b> {bar} {detail}"
    return f"<div id='job-status' data-status='{job.status}'>{text}</div>"


def _status_html(state: str, text: str) -> str:
    return f"<div id='job-status' data-status='{state}'>{text}</div>"


def mount_ui(app: Any, service: JobService) -> Any:
    """Mount the UI at /ui, allowing Gradio to serve the job output files."""
    return gr.mount_gradio_app(
        app, build_ui(service), path="/ui", allowed_paths=[str(service.settings.outputs_dir)]
    )
