"""What the API answers: jobs, pages of jobs, uploads, models and errors (the OpenAPI response schemas)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field

from videogen.catalog import ModelSpec
from videogen.loading import is_cached
from videogen.server.store import JobRow, Status, UploadRow

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: output kinds that are folders, not single files, and so have no download URL
FOLDER_KINDS = frozenset({"frames"})


class Progress(BaseModel):
    """The last progress event of a running job."""

    stage: str = Field(description="load, encode, denoise, decode or write")
    video: int = Field(description="index of the video being made, from 0")
    num_videos: int = Field(description="videos this job makes")
    step: int = Field(description="denoising step done (0 for a stage change)")
    total: int = Field(description="denoising steps of this video")
    elapsed: float = Field(description="seconds since the run started")
    eta: float | None = Field(description="seconds left in this video's denoising, when known")


class VideoOut(BaseModel):
    """One video a job wrote: files by kind (relative to the job's folder) and their URLs."""

    model: str = Field(description="the model that made it (the upscaler, for an upscaled video)")
    seed: int = Field(description="the seed of this video")
    files: dict[str, str] = Field(description="kind (mp4, webm, gif, frames, sidecar, latents) -> path")
    urls: dict[str, str] = Field(description="kind -> download URL (with range support); folders have none")
    timings: dict[str, float] = Field(description="seconds per stage: load_s, encode_s, denoise_s, ...")
    metadata: dict[str, Any] = Field(description="the JSON sidecar written beside the video")


class JobOut(BaseModel):
    """One job: its request, status, progress and outputs."""

    id: str = Field(description="the job's id")
    status: Status = Field(description="queued, running, succeeded, failed or cancelled")
    model: str = Field(description="the request's model")
    request: dict[str, Any] = Field(description="the Request fields as submitted, with the seed filled in")
    seed: int = Field(description="the seed actually used (video k uses seed + k)")
    seed_was_random: bool = Field(description="whether the request left the seed out (or gave -1)")
    attempts: int = Field(description="runs started; more than one means a crash interrupted a run")
    cancel_requested: bool = Field(description="a cancel was asked for; the run stops at its next step")
    progress: Progress | None = Field(description="the last progress of a running job")
    error: str | None = Field(description="why the job failed or was cancelled")
    outputs: list[VideoOut] = Field(description="the videos written, once the job has succeeded")
    generation_seconds: float | None = Field(description="seconds the run took, once it has ended")
    created_at: datetime = Field(description="when the job was submitted")
    updated_at: datetime = Field(description="when the job last changed")
    started_at: datetime | None = Field(description="when its (last) run started")
    finished_at: datetime | None = Field(description="when it ended")

    @classmethod
    def from_row(cls, row: JobRow) -> JobOut:
        outputs = [
            VideoOut(
                **video,
                urls={
                    kind: f"/v1/jobs/{row.id}/files/{quote(path)}"
                    for kind, path in video["files"].items()
                    if kind not in FOLDER_KINDS
                },
            )
            for video in row.outputs or []
        ]
        fields = {name: getattr(row, name) for name in cls.model_fields if name != "outputs"}
        return cls(**valid_unicode(fields), outputs=valid_unicode(outputs))


def valid_unicode(value: Any) -> Any:
    """``value`` with lone surrogates in its strings replaced by U+FFFD.

    Submit refuses such text, but a row stored before it did (or by another writer) must not make
    every listing that includes it fail to encode.
    """
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {valid_unicode(key): valid_unicode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [valid_unicode(item) for item in value]
    return value


class JobPage(BaseModel):
    """One page of the job history, newest first."""

    jobs: list[JobOut] = Field(description="the jobs of this page")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null at the end")


class UploadOut(BaseModel):
    id: str = Field(description="use as the request's image or video field")
    kind: str = Field(description="image or video")
    content_type: str = Field(description="the media type read from the file's content")
    filename: str = Field(description="the client's file name, cleaned")
    size_bytes: int = Field(description="size of the stored file")
    width: int = Field(description="pixels")
    height: int = Field(description="pixels")
    frames: int = Field(description="frames of a video (1 for an image)")
    sha256: str = Field(description="SHA-256 of the stored file")
    created_at: datetime = Field(description="when it was uploaded")

    @classmethod
    def from_row(cls, row: UploadRow) -> UploadOut:
        return cls(**{name: getattr(row, name) for name in cls.model_fields})


class ModelOut(BaseModel):
    """A model this server offers."""

    id: str = Field(description="use as the request's model field")
    family: str = Field(description="unet3d (ModelScope, Zeroscope) or svd (SVD, SV3D)")
    tasks: list[str] = Field(description="t2v (text), i2v (image) and v2v (video) to video")
    source: str = Field(description="Hub repo@revision, or the local folder")
    local: bool = Field(description="offered from the server's --models-dir")
    defaults: dict[str, Any] = Field(description="what a request gets for the fields it leaves out")
    max_frames: int = Field(description="the most frames a video may have")
    max_side: int = Field(description="the longest side in pixels")
    license: str = Field(description="the weights' license")
    vram_gb: float = Field(description="GPU memory it needs at its default size, roughly")
    description: str = Field(description="what it is")
    orbit: bool = Field(description="an SV3D-style model: the input is an object to orbit")
    available: bool = Field(
        description="its weights are on this server; a job for a model that is not is refused with 422 "
        "(run `videogen download ID` on the server)"
    )

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ModelOut:
        d = spec.defaults
        return cls(
            id=spec.id,
            family=spec.family,
            tasks=list(spec.tasks),
            source=spec.source,
            local=spec.local_dir is not None,
            defaults={
                "num_frames": d.num_frames,
                "height": d.height,
                "width": d.width,
                "steps": d.steps,
                "guidance": d.guidance,
                "fps": d.fps,
                "scheduler": d.scheduler,
            },
            max_frames=spec.limits.max_frames,
            max_side=spec.limits.max_side,
            license=spec.license,
            vram_gb=spec.vram_gb,
            description=spec.description,
            orbit=spec.orbit,
            available=is_cached(spec),
        )


class Problem(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="the field at fault")
    message: str = Field(description="its value and what is allowed")


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer: a message for people and the field at fault, when there is one."""

    error: str = Field(description="what went wrong, for people")
    field: str | None = Field(default=None, description="the field at fault, when there is one")
    problems: list[Problem] = Field(default_factory=list, description="one entry per invalid field")


class Health(BaseModel):
    """Whether the server answers, and what it is doing."""

    status: str = Field(description="ok")
    queue_depth: int = Field(description="jobs waiting to run")
    worker: bool = Field(description="whether this server runs jobs (false with --no-worker)")
