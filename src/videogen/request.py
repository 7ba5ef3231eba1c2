"""One request schema for every front-end: CLI flags, YAML configs, REST JSON and UI controls.

``Request`` checks what can be checked without knowing the model (types, ranges, multiples of
8, unknown keys). ``resolve_request`` then fills the model's defaults and checks its limits.
Errors always name the field, the value and what is allowed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from videogen.catalog import ModelSpec, resolve_model
from videogen.errors import FieldError, UserError
from videogen.sampling.presets import preset_fields

Scheduler = Literal["ddim", "dpm++", "euler", "unipc"]
Format = Literal["mp4", "webm", "gif", "frames"]
Device = Literal["auto", "cpu", "cuda", "mps"]
DType = Literal["auto", "fp32", "fp16", "bf16"]
NoiseMode = Literal["independent", "shared", "mixed"]
Fit = Literal["crop", "pad", "stretch"]
CameraPath = Literal["orbit", "wave", "spiral", "front-back"]
Preset = Literal["quality", "balanced", "fast"]
Offload = Literal["model", "sequential"]
SCHEDULERS: tuple[str, ...] = get_args(Scheduler)
log = logging.getLogger(__name__)
FORMATS: tuple[str, ...] = get_args(Format)


class Request(BaseModel):
    """Everything one generation needs. Fields left as None take the model's defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # task inputs
    prompt: str | None = None
    negative_prompt: str | None = None
    image: str | None = None
    video: str | None = None
    # model
    model: str = "modelscope-t2v"
    revision: str | None = None
    variant: str | None = None
    # shape
    num_frames: int | None = Field(default=None, ge=1)
    height: int | None = None
    width: int | None = None
    # sampling
    steps: int | None = Field(default=None, ge=1, le=1000)
    scheduler: Scheduler | None = None
    guidance: float | None = Field(default=None, ge=0, le=100)
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    num_videos: int = Field(default=1, ge=1, le=64)
    # image / video conditioning (UNet3D family: noisy seeding from a still or a clip)
    strength: float | None = Field(default=None, gt=0, le=1)
    noise_mode: NoiseMode = "independent"
    noise_mix: float = Field(default=0.5, ge=0, le=1)
    pin_first_frame: bool = False
    fit: Fit = "crop"
    background: str = "white"
    max_input_pixels: int = Field(default=50_000_000, ge=1)
    upscale: str | None = None
    upscale_strength: float = Field(default=0.65, gt=0, le=1)
    # Stable Video Diffusion
    motion_bucket_id: int | None = Field(default=None, ge=0, le=255)
    cond_fps: float | None = Field(default=None, gt=0, le=240)
    noise_aug_strength: float | None = Field(default=None, ge=0, le=10)
    min_guidance: float | None = Field(default=None, ge=0, le=100)
    max_guidance: float | None = Field(default=None, ge=0, le=100)
    # SV3D orbits
    elevations: list[float] | None = None
    azimuths: list[float] | None = None
    camera_path: CameraPath | None = None
    image_frame_ratio: float | None = Field(default=None, gt=0, le=1)
    remove_background: bool = True
    # output
    formats: list[Format] = Field(default_factory=lambda: ["mp4"], min_length=1)
    fps: float | None = Field(default=None, gt=0, le=240)
    out_dir: str = "outputs"
    watermark: bool | None = None
    # runtime
    device: Device = "auto"
    dtype: DType = "auto"
    decode_chunk_size: int | None = Field(default=None, ge=1)
    offload: Offload | None = None
    compile: bool = False
    save_latents: bool = False
    # fast sampling (recorded in the sidecar like every field)
    preset: Preset | None = None
    cache_interval: int | None = Field(default=None, ge=1, le=50)
    guidance_end: float | None = Field(default=None, ge=0, le=1)

    @field_validator("height", "width")
    @classmethod
    def _multiple_of_8(cls, value: int | None) -> int | None:
        if value is not None and (value <= 0 or value % 8):
            raise ValueError("must be a positive multiple of 8")
        return value

    @field_validator("elevations", mode="before")
    @classmethod
    def _scalar_elevation(cls, value: Any) -> Any:
        """One elevation for the whole orbit may be given as a plain number."""
        return [value] if isinstance(value, (int, float)) else value

    @field_validator("formats")
    @classmethod
    def _unique_formats(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


def parse_request(data: dict[str, Any]) -> Request:
    """Validate a mapping of request fields, turning pydantic's errors into one readable UserError."""
    try:
        return Request.model_validate(data)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field: value is not allowed; what is allowed``."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "request"
        if err["type"] == "extra_forbidden":
            allowed = f"unknown field; known fields: {', '.join(Request.model_fields)}"
        else:
            allowed = _allowed_text(err)
        lines.append(f"{field}: {err.get('input')!r} is not allowed; {allowed}")
    return "\n".join(lines)


def _allowed_text(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        return f"must be {bounds[kind]} {next(iter(ctx.values())):g}"
    if kind == "literal_error":
        return f"allowed: {ctx['expected']}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"].lower()


def load_config(path: Path) -> dict[str, Any]:
    """Read a YAML config whose keys are request fields."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"config: cannot read {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config: {str(path)!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(
            f"config: {str(path)!r} must hold a mapping of request fields, not {type(data).__name__}"
        )
    return data


def resolve_request(request: Request) -> tuple[Request, ModelSpec]:
    """Fill the model's defaults into ``request`` and check the model's limits.

    Returns the completed request (every shape/sampling field set) and the model's spec.
    """
    spec = resolve_model(request.model)
    d = spec.defaults
    preset = preset_fields(request.preset, spec.family)
    request = request.model_copy(
        update={name: value for name, value in preset.items() if getattr(request, name) is None}
    )
    seeded_from_input = spec.family == "unet3d" and bool(request.image or request.video)
    filled = request.model_copy(
        update={
            "cache_interval": request.cache_interval or 1,
            "guidance_end": 1.0 if request.guidance_end is None else request.guidance_end,
            "num_frames": request.num_frames or d.num_frames,
            "height": request.height or d.height,
            "width": request.width or d.width,
            "steps": request.steps or d.steps,
            "scheduler": request.scheduler or d.scheduler,
            "guidance": d.guidance if request.guidance is None else request.guidance,
            "fps": request.fps or d.fps,
            "revision": request.revision or spec.revision,
            "variant": request.variant or spec.variant,
            "strength": request.strength or (d.strength if seeded_from_input else None),
            "watermark": d.watermark if request.watermark is None else request.watermark,
        }
    )
    if spec.family == "svd":
        filled = filled.model_copy(update={name: _or(request, name, d) for name in SVD_DEFAULTED})
    check_family_fields(request, spec)
    check_limits(filled, spec)
    return filled, spec


#: Fields only the SVD family reads, filled from its defaults when left out.
SVD_DEFAULTED = ("motion_bucket_id", "cond_fps", "noise_aug_strength", "min_guidance", "max_guidance",
                 "image_frame_ratio")  # fmt: skip
#: Fields (left at None by default) that only one family reads.
FAMILY_ONLY = {
    "svd": (*SVD_DEFAULTED, "elevations", "azimuths", "camera_path"),
    "unet3d": ("strength", "upscale", "negative_prompt"),
}


def _or(request: Request, name: str, defaults: object) -> object:
    value = getattr(request, name)
    return getattr(defaults, name) if value is None else value


def check_family_fields(request: Request, spec: ModelSpec) -> None:
    """A control the model's family does not have is an error, not silently ignored."""
    for family, names in FAMILY_ONLY.items():
        if family == spec.family:
            continue
        for name in names:
            value = getattr(request, name)
            if value is not None:
                raise FieldError(
                    name, value, f"only models of the {family} family use it; {spec.id} is {spec.family}"
                )


def check_limits(request: Request, spec: ModelSpec) -> None:
    """Raise FieldError for values the model cannot take."""
    limits = spec.limits
    if request.num_frames > limits.max_frames:
        raise FieldError("num_frames", request.num_frames, f"{spec.id} takes 1 to {limits.max_frames} frames")
    if limits.frames is not None and request.num_frames != limits.frames:
        raise FieldError("num_frames", request.num_frames, f"{spec.id} takes exactly {limits.frames} frames")
    for name in ("height", "width"):
        value = getattr(request, name)
        if value > limits.max_side:
            raise FieldError(name, value, f"{spec.id} takes at most {limits.max_side} pixels")
    if limits.sizes and (request.height, request.width) not in limits.sizes:
        sizes = ", ".join(f"{w}x{h}" for h, w in limits.sizes)
        raise FieldError("height", request.height, f"{spec.id} takes only {sizes} (width x height)")
    if "t2v" in spec.tasks and not (request.prompt or "").strip():
        raise FieldError("prompt", request.prompt, f"{spec.id} is a text-to-video model and needs a prompt")
    check_inputs(request, spec)


def check_inputs(request: Request, spec: ModelSpec) -> None:
    """The image/video fields must fit together and suit the model."""
    if request.image and request.video:
        raise FieldError("video", request.video, "give either image or video, not both")
    for name, task in (("image", "i2v"), ("video", "v2v")):
        value = getattr(request, name)
        if value and task not in spec.tasks:
            raise FieldError(
                name, value, f"{spec.id} cannot take an {name} (it does {', '.join(spec.tasks)})"
            )
    if "t2v" not in spec.tasks and not request.image:
        raise FieldError("image", None, f"{spec.id} turns an image into a video; pass an image")
    if "t2v" not in spec.tasks and request.prompt:
        log.warning("the prompt is ignored: %s is conditioned on the image only", spec.id)
    if request.upscale:
        upscaler = resolve_model(request.upscale)
        if "v2v" not in upscaler.tasks:
            raise FieldError("upscale", request.upscale, f"{upscaler.id} cannot take a video to upscale")
