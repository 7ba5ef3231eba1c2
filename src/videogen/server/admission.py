"""Which requests this server takes, and how a stored request becomes one ``generate`` can run.

A job's request names models by id and inputs by upload id. ``local_request`` turns those into
local paths when the worker runs it; ``admit`` runs the same conversion at submit time, so a
request that cannot run is refused with a 4xx naming the field instead of failing in the queue.
"""

from __future__ import annotations

from pathlib import Path

from videogen.catalog import ModelSpec, resolve_model
from videogen.errors import FieldError, UserError
from videogen.fields import upload_fields
from videogen.generate import runtime_device
from videogen.loading import is_cached, locate_weights
from videogen.models_dir import available_models, with_models_dir
from videogen.request import Request, split_keyframe, split_lora
from videogen.resolve import resolve
from videogen.server.settings import Settings
from videogen.server.store import JobStore, is_id

#: request field -> the Settings attribute that caps it server-wide
CAPS = {
    "num_frames": "max_frames",
    "height": "max_side",
    "width": "max_side",
    "steps": "max_steps",
    "num_videos": "max_videos",
}


def local_request(request: Request, settings: Settings, store: JobStore) -> Request:
    """The request with local model folders and upload files in place of names and upload ids."""
    request = with_models_dir(request, settings.models_dir)
    update: dict[str, object] = {}
    for name, kind in upload_fields().items():
        upload_id = getattr(request, name)
        if upload_id is not None:
            update[name] = upload_path(name, upload_id, (kind,), settings, store)
    if request.lora:
        update["lora"] = [server_lora(entry, settings) for entry in request.lora]
    if request.keyframe:
        update["keyframe"] = [server_keyframe(entry, settings, store) for entry in request.keyframe]
    return request.model_copy(update=update)


def upload_path(
    name: str, upload_id: str, kinds: tuple[str, ...], settings: Settings, store: JobStore
) -> str:
    """The stored file of upload ``upload_id``, which must be one of ``kinds``; errors name ``name``."""
    upload = store.upload(upload_id) if is_id(upload_id) else None
    if upload is None:
        raise FieldError(name, upload_id, "not an upload id; POST the file to /v1/uploads first")
    if upload.kind not in kinds:
        raise FieldError(name, upload_id, f"that upload is a {upload.kind}, not an {' or '.join(kinds)}")
    return str(settings.uploads_dir / upload.stored_name)


def server_keyframe(entry: str, settings: Settings, store: JobStore) -> str:
    """A ``keyframe`` entry, UPLOAD_ID@FRAME[:STRENGTH], with the uploaded image or clip's file in
    place of its id."""
    upload_id, frame, strength = split_keyframe(entry)
    return f"{upload_path('keyframe', upload_id, ('image', 'video'), settings, store)}@{frame}:{strength}"


def server_lora(entry: str, settings: Settings) -> str:
    """A ``lora`` entry as a file of the server's LoRA folder. Clients name files in it, never a path
    or a Hub repo: either would let them read, or probe for, any file the server can."""
    name, scale = split_lora(entry)
    folder = settings.loras_dir
    if Path(name).name != name or name.startswith(".") or "\\" in name:
        allowed = "on this server, name a file of its LoRA folder (data_dir/loras), not a path or repo"
        raise FieldError("lora", entry, allowed)
    if not (folder / name).is_file():
        present = sorted(path.name for path in folder.glob("*.safetensors"))[:20] if folder.is_dir() else []
        allowed = f"no such file in the server's LoRA folder; it holds: {', '.join(present) or 'none'}"
        raise FieldError("lora", entry, allowed)
    return f"{folder / name}:{scale}"


def admit(request: Request, settings: Settings, store: JobStore) -> None:
    """Raise FieldError unless the request can run on this server within its limits."""
    if "out_dir" in request.model_fields_set:
        raise FieldError("out_dir", request.out_dir, "the server decides where outputs go; leave it out")
    models = available_models(settings.models_dir)
    for name in ("model", "upscale"):
        value = getattr(request, name)
        if value is not None and value not in models:
            raise FieldError(name, value, f"known models: {', '.join(models)} (see GET /v1/models)")
    texts = [("prompt", request.prompt), ("negative_prompt", request.negative_prompt)]
    texts += [("segment_prompts", prompt) for prompt in request.segment_prompts or []]
    for name, text in texts:
        if text is not None and len(text) > settings.max_prompt_chars:
            limit = f"this server takes at most {settings.max_prompt_chars} (its max_prompt_chars setting)"
            raise FieldError(name, text, f"{len(text)} characters; {limit}")
    local = local_request(request, settings, store)
    runtime_device(local)
    resolved = resolve(local)  # its seed is dropped: the service chooses the job's seed and records it
    complete = resolved.request
    for field, setting in CAPS.items():
        value, cap = getattr(complete, field), getattr(settings, setting)
        if value > cap:
            raise FieldError(field, value, f"this server takes at most {cap} (its {setting} setting)")
    named = "variant" if request.variant else "model"
    check_weights_here(resolved.spec, complete.revision, complete.variant, named)
    if complete.upscale:
        check_weights_here(resolve_model(complete.upscale), None, None, "upscale")


def check_weights_here(spec: ModelSpec, revision: str | None, variant: str | None, field: str) -> None:
    """Refuse a model whose weights this server does not hold: the job could only fail in the queue.

    SV3D's single-file checkpoints count once downloaded (the first job that loads them converts them).
    """
    value = variant if field == "variant" else spec.id
    if spec.checkpoint:
        if not is_cached(spec):
            raise FieldError(field, value, f"not on this server; run `videogen download {spec.id}` there")
        return
    try:
        locate_weights(spec, revision, variant)
    except UserError as exc:
        raise FieldError(field, value, str(exc)) from None
