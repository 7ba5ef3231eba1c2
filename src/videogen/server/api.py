"""The REST routes. Each one is a thin call into ``JobService``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Header, Path, Query, Response, UploadFile
from fastapi import Request as HttpRequest
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from videogen.request import Request
from videogen.sampling.preview import PREVIEW_MEDIA_TYPE
from videogen.server.errors import ApiError
from videogen.server.events import event_stream
from videogen.server.files import CONTENT_TYPES, file_response
from videogen.server.metrics import CONTENT_TYPE
from videogen.server.schemas import ErrorOut, Health, JobOut, JobPage, ModelOut, UploadOut
from videogen.server.service import IDEMPOTENCY_HEADER, JobService
from videogen.server.store import Status


def get_service(request: HttpRequest) -> JobService:
    return request.app.state.service


Service = Annotated[JobService, Depends(get_service)]
JobId = Annotated[str, Path(description="the job's id")]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error answers, all of them ErrorOut (docs.py adds 401 where a key is set)."""
    return {code: {"model": ErrorOut} for code in codes}


v1 = APIRouter(prefix="/v1")
#: /healthz and /metrics
service_routes = APIRouter()


@v1.post(
    "/uploads",
    status_code=201,
    response_model=UploadOut,
    responses=errors(413, 415, 422),
    tags=["uploads"],
    summary="Upload an image or video to use as a job's input",
)
def upload(
    service: Service, file: Annotated[UploadFile, File(description="an image or a video")]
) -> UploadOut:
    """The content must decode as an image (PNG, JPEG, WebP, BMP, TIFF, GIF) or a video (MP4, WebM,
    AVI, animated GIF) within the server's size, pixel and frame limits; the file name is ignored.
    The answer's ``id`` goes into a job's ``image`` or ``video`` field."""
    return service.upload(file.file, file.filename or "upload")


@v1.post(
    "/jobs",
    status_code=202,
    response_model=JobOut,
    responses=errors(409, 422, 429),
    tags=["jobs"],
    summary="Queue a generation",
)
def submit(
    body: Request,
    response: Response,
    service: Service,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            min_length=1,
            max_length=255,
            description="a retry with the same key and body returns the first job instead of a new one",
        ),
    ] = None,
) -> JobOut:
    """The body is the request schema shared with the command line. ``image`` and ``video`` take
    upload ids; ``out_dir`` is chosen by the server. A missing seed is picked now and recorded."""
    job, _ = service.submit(body, idempotency_key)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job


@v1.get(
    "/jobs", response_model=JobPage, responses=errors(422), tags=["jobs"], summary="List jobs, newest first"
)
def list_jobs(
    service: Service,
    status: Annotated[list[Status] | None, Query(description="only jobs in these statuses")] = None,
    model: Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00-\x1f]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=20, description="next_cursor of the previous page")
    ] = None,
) -> JobPage:
    return service.list(status or (), model, limit, cursor)


@v1.get("/jobs/{job_id}", response_model=JobOut, responses=errors(404), tags=["jobs"], summary="One job")
def get_job(job_id: JobId, service: Service) -> JobOut:
    return service.get(job_id)


@v1.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses={
        202: {"model": JobOut, "description": "running: it stops at its next step"},
        **errors(404, 409),
    },
    tags=["jobs"],
    summary="Cancel a queued or running job",
)
def cancel_job(job_id: JobId, service: Service, response: Response) -> JobOut:
    job = service.cancel(job_id)
    if job.status == "running":
        response.status_code = 202
    return job


@v1.delete(
    "/jobs/{job_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409),
    tags=["jobs"],
    summary="Delete a job that is not running, with its files",
)
def delete_job(job_id: JobId, service: Service) -> Response:
    service.delete(job_id)
    return Response(status_code=204)


@v1.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "server-sent events: queued, started, progress (stage, step, total, eta), "
            "then finished, failed or cancelled; status events carry the job. Each event has an id; "
            "reconnecting with Last-Event-ID sends the events missed since, when the server still "
            "holds them, else the job's current state. A stream also ends with `deleted` when the "
            "job is deleted and `shutdown` when the server stops (these two carry no id). While it "
            "denoises, a `preview` every few steps and at the last one: "
            '`{"id", "video", "step", "total", "image": "data:image/jpeg;base64,..."}`, a cheap '
            "latent-to-RGB projection; previews carry no id, are not replayed on a reconnect and "
            "may be dropped for a slow client.",
        },
        **errors(404),
    },
    tags=["jobs"],
    summary="Follow a job's progress",
)
async def job_events(
    job_id: JobId,
    service: Service,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=64,
            description="the id of the last event received, to resume a stream (EventSource sends it)",
        ),
    ] = None,
) -> StreamingResponse:
    await run_in_threadpool(service.get, job_id)  # 404 before the stream starts

    async def load() -> JobOut | None:
        return await run_in_threadpool(service.find, job_id)

    return StreamingResponse(
        event_stream(service.bus, job_id, load, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@v1.get(
    "/jobs/{job_id}/preview",
    response_class=Response,
    responses={
        200: {
            "content": {PREVIEW_MEDIA_TYPE: {}},
            "description": "the latest preview; the headers X-Preview-Video, X-Preview-Step and "
            "X-Preview-Total say which video and step it shows",
        },
        **errors(404),
    },
    tags=["jobs"],
    summary="The latest preview of a job's denoising",
)
def job_preview(job_id: JobId, service: Service) -> Response:
    """A small JPEG of the latents, made every few denoising steps and at the last one (the same
    image as the events' `preview`). Kept in memory by the server that runs the job, during the job
    and after it until it runs again or is deleted; 404 before the first one."""
    preview = service.preview(job_id)
    if preview is None:
        job = service.get(job_id)  # 404 for no such job
        raise ApiError(
            404,
            f"job {job.id} has no preview yet: "
            "this server makes one every few denoising steps while it runs the job",
        )
    headers = {
        "X-Preview-Video": str(preview.video),
        "X-Preview-Step": str(preview.step),
        "X-Preview-Total": str(preview.total),
        "Cache-Control": "no-store",
    }
    return Response(preview.image, media_type=preview.media_type, headers=headers)


FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media: {} for media in sorted(set(CONTENT_TYPES.values()))}, "description": "the file"},
    206: {"description": "the requested byte range (Range: bytes=...)"},
    400: {"model": ErrorOut, "description": "the Range header is not a byte range"},
    416: {"model": ErrorOut, "description": "the range starts beyond the end of the file"},
    **errors(404),
}


@v1.head(
    "/jobs/{job_id}/files/{path:path}",
    response_class=FileResponse,
    responses=FILE_RESPONSES,
    tags=["jobs"],
    summary="A job file's headers (size, type, dates) without its content",
)
@v1.get(
    "/jobs/{job_id}/files/{path:path}",
    response_class=FileResponse,
    responses=FILE_RESPONSES,
    tags=["jobs"],
    summary="Download one of a job's files (byte ranges supported)",
)
def job_file(job_id: JobId, path: str, service: Service) -> FileResponse:
    return file_response(service.output_file(job_id, path))


@v1.get("/models", response_model=list[ModelOut], tags=["models"], summary="Models this server can run")
def list_models(service: Service) -> list[ModelOut]:
    return service.models()


@service_routes.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": ErrorOut}},
    tags=["service"],
    summary="Liveness",
)
def healthz(service: Service) -> Health:
    """Open without the API key. 503 when the database does not answer."""
    try:
        depth = service.queue_depth()
    except SQLAlchemyError:
        raise ApiError(503, "the database does not answer") from None
    worker = service.worker is not None and service.worker.alive
    return Health(status="ok", queue_depth=depth, worker=worker)


@service_routes.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
    tags=["service"],
    summary="Prometheus metrics",
)
def metrics(service: Service) -> Response:
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)
