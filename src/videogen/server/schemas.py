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
    num_videos: int
    step: int = Field(description="denoising step done (0 for a stage change)")
    total: int = Field(description="denoising steps of this video")
    elapsed: float = Field(description="seconds since the run started")
    eta: float | None = Field(description="seconds left in this video's denoising, when known")


class VideoOut(BaseModel):
    """One video a job wrote: files by kind (relative to the job's folder) and their URLs."""

    model: str
    seed: int
    files: dict[str, str]
    urls: dict[str, str]
    timings: dict[str, float]
    metadata: dict[str, Any] = Field(description="the JSON sidecar written beside the video")


class JobOut(BaseModel):
    id: str
    status: Status
    model: str
    request: dict[str, Any] = Field(description="the Request fields as submitted, with the seed filled in")
    seed: int = Field(description="the seed actually used (video k uses seed + k)")
    seed_was_random: bool
    attempts: int = Field(description="runs started; more than one means a crash interrupted a run")
    cancel_requested: bool
    progress: Progress | None
    error: str | None
    outputs: list[VideoOut]
    generation_seconds: float | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

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
    jobs: list[JobOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null at the end")


class UploadOut(BaseModel):
    id: str = Field(description="use as the request's image or video field")
    kind: str = Field(description="image or video")
    content_type: str
    filename: str
    size_bytes: int
    width: int
    height: int
    frames: int
    sha256: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: UploadRow) -> UploadOut:
        return cls(**{name: getattr(row, name) for name in cls.model_fields})


class ModelOut(BaseModel):
    id: str
    family: str
    tasks: list[str]
    source: str = Field(description="Hub repo@revision, or the local folder")
    local: bool = Field(description="offered from the server's --models-dir")
    defaults: dict[str, Any]
    max_frames: int
    max_side: int
    license: str
    vram_gb: float
    description: str
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
    field: str
    message: str


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer: a message for people and the field at fault, when there is one."""

    error: str
    field: str | None = None
    problems: list[Problem] = Field(default_factory=list, description="one entry per invalid field")


class Health(BaseModel):
    status: str
    queue_depth: int
    worker: bool
