"""One request schema for every front-end: CLI flags, YAML configs, REST JSON and UI controls.

``Request`` checks what can be checked without knowing the model (types, ranges, multiples of
8, unknown keys). ``resolve_request`` then fills the model's defaults and checks its limits.
Errors always name the field, the value and what is allowed.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from videogen.catalog import ModelSpec, resolve_model
from videogen.errors import FieldError, UserError, shown
from videogen.families import KINDS, kinds_taking
from videogen.sampling.presets import preset_fields

Scheduler = Literal["ddim", "dpm++", "euler", "unipc"]
Format = Literal["mp4", "webm", "gif", "frames"]
Device = Literal["auto", "cpu", "cuda", "mps"]
DType = Literal["auto", "fp32", "fp16", "bf16"]
NoiseMode = Literal["independent", "shared", "mixed"]
Fit = Literal["crop", "pad", "stretch"]
CameraPath = Literal["orbit", "wave", "spiral", "front-back"]
Preset = Literal["quality", "balanced", "fast"]
Offload = Literal["model", "sequential", "group"]
TextEncoderDevice = Literal["auto", "cpu"]
WeightsDType = Literal["fp8"]
SCHEDULERS: tuple[str, ...] = get_args(Scheduler)
log = logging.getLogger(__name__)
FORMATS: tuple[str, ...] = get_args(Format)
#: the longest prompt or negative prompt any front-end takes (a server may set a lower limit)
MAX_PROMPT_CHARS = 20_000
#: characters a prompt may hold besides printable text
PROMPT_WHITESPACE = frozenset("\n\r\t")


def _not_bool(value: Any) -> Any:
    """JSON and YAML ``true`` would otherwise pass as the number 1."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]
OptionalInt = Annotated[int | None, BeforeValidator(_not_bool)]
OptionalFloat = Annotated[float | None, BeforeValidator(_not_bool)]


def _random_seed(value: Any) -> Any:
    """``-1`` asks for a random seed, as in AUTOMATIC1111 and ComfyUI."""
    value = _not_bool(value)
    return None if value in (-1, "-1") else value


#: The groups fields are shown in, in order: CLI help panels, UI sections, the fields reference.
GROUPS = {
    "inputs": "Inputs",
    "shape": "Shape",
    "length": "Long videos",
    "sampling": "Sampling",
    "conditioning": "Image / video conditioning",
    "output": "Output",
    "runtime": "Runtime",
    "speed": "Speed",
}
#: what ``_multiple_of_8`` checks, for the JSON schema
MULTIPLE_OF_8 = {"minimum": 8, "multipleOf": 8}
Group = Literal["inputs", "shape", "length", "sampling", "conditioning", "output", "runtime", "speed"]


def declare(
    default: Any = None,
    *,
    group: Group,
    description: str,
    unit: str | None = None,
    advanced: bool = False,
    flag: str | None = None,
    default_text: str | None = None,
    upload: Literal["image", "video"] | None = None,
    schema: dict[str, Any] | None = None,
    **constraints: Any,
) -> Any:
    """A Request field with the metadata every front-end builds its control from (``fields.py``).

    ``advanced`` fields are folded away in the UI; ``flag`` is the CLI option when it is not the
    field name (``--out``, or singular for a repeatable one); ``default_text`` says who decides a
    value left empty when neither the schema nor the model's defaults do (e.g. "random"); ``upload``
    marks a file input (on the server, an upload id of that kind); ``schema`` adds constraints that
    a validator checks, for the JSON schema to show them.
    """
    extra = {"x-group": group, "x-unit": unit, "x-advanced": advanced, "x-flag": flag, "x-upload": upload}
    extra["x-default"] = default_text
    extra = {key: value for key, value in extra.items() if value is not None} | (schema or {})
    if callable(default):
        return Field(default_factory=default, description=description, json_schema_extra=extra, **constraints)
    return Field(default=default, description=description, json_schema_extra=extra, **constraints)


def _kinds_in_schema(schema: dict[str, Any]) -> None:
    """Each property says which kinds of model read it (``x-kinds``), from the families' table."""
    for name, prop in schema["properties"].items():
        prop["x-kinds"] = kinds_taking(name)


class Request(BaseModel):
    """Everything one generation needs. Fields left empty take the model's defaults.

    Each field is declared once, here, with its description, group, unit and range; which kinds of
    model take it is declared by the families (``videogen.families``).
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, allow_inf_nan=False, json_schema_extra=_kinds_in_schema
    )

    # inputs
    prompt: str | None = declare(
        group="inputs", description="What the video shows.", max_length=MAX_PROMPT_CHARS
    )
    negative_prompt: str | None = declare(
        group="inputs", description="What to steer away from.", max_length=MAX_PROMPT_CHARS
    )
    image: str | None = declare(
        group="inputs",
        upload="image",
        description="Start from this still image: a file (on the server, an upload id); the CLI also "
        "takes a folder of images, one run each.",
    )
    last_image: str | None = declare(
        group="inputs",
        upload="image",
        description="Wan first and last frame: the video ends on this image (the first is image).",
    )
    keyframe: list[str] | None = declare(
        group="inputs",
        description="LTX-Video: an image or clip placed at a frame of the video, FILE@FRAME or "
        "FILE@FRAME:STRENGTH (strength 0 to 1, default 1), e.g. end.png@96; repeatable (on the server, "
        "an upload id in place of FILE).",
        flag="--keyframe",
        min_length=1,
        max_length=8,
    )
    video: str | None = declare(
        group="inputs",
        upload="video",
        description="Video to video: an mp4, webm or gif file, or a folder of frames (on the server, "
        "an upload id).",
    )
    model: str = declare(
        "modelscope-t2v",
        group="inputs",
        description="Catalog id (see `videogen models`) or a diffusers-layout folder.",
    )
    max_input_pixels: Int = declare(
        50_000_000,
        group="inputs",
        description="Refuse input images, and video frames, with more pixels than this.",
        unit="pixels",
        advanced=True,
        ge=1,
    )
    # shape
    num_frames: OptionalInt = declare(group="shape", description="Frames per video.", unit="frames", ge=1)
    height: OptionalInt = declare(
        group="shape",
        description="Height: a multiple of 8, or of the model's own step (Wan 16, Wan 2.2 TI2V 32).",
        unit="pixels",
        schema=MULTIPLE_OF_8,
    )
    width: OptionalInt = declare(
        group="shape",
        description="Width: a multiple of 8, or of the model's own step (Wan 16, Wan 2.2 TI2V 32).",
        unit="pixels",
        schema=MULTIPLE_OF_8,
    )
    # long videos
    segments: Int = declare(
        1,
        group="length",
        description="Segments chained into one video, each continuing from the last frames of the one "
        "before (with extend: segments added to that video).",
        unit="segments",
        ge=1,
        le=32,
    )
    overlap: OptionalInt = declare(
        group="length",
        description="Frames two segments share, blended from one into the other.",
        unit="frames",
        default_text="1 when continuing from an image, 4 from a video",
        ge=1,
    )
    segment_prompts: list[str] | None = declare(
        group="length",
        description="One prompt per segment, in order (default: the prompt for all).",
        flag="--segment-prompt",
        min_length=1,
        max_length=32,
    )
    segment_strength: OptionalFloat = declare(
        group="length",
        description="Continuing by video to video: how far each segment may move from the frames it "
        "continues.",
        default_text="0.8",
        gt=0,
        le=1,
    )
    colour_match: bool = declare(
        True,
        group="length",
        description="Match each segment's colours to the one before it over their shared frames (Lab "
        "mean and spread), so colours do not drift along the video.",
    )
    anchor_image: bool = declare(
        False,
        group="length",
        description="Image-to-video chains (SVD, Wan 2.1 I2V): every segment keeps the input image's "
        "identity (its CLIP embedding) while it starts from the frame it continues.",
    )
    extend: str | None = declare(
        group="length",
        upload="video",
        description="Continue this video (any mp4, webm, gif or folder of frames; on the server, an "
        "upload id): it is fitted to the size and the new segments follow it.",
    )
    interpolate: Int = declare(
        1,
        group="length",
        description="Motion-compensated frames: K-1 new frames between each pair (2: twice as many); the "
        "playback fps scales with it unless fps is given.",
        ge=1,
        le=8,
    )
    # sampling
    steps: OptionalInt = declare(
        group="sampling", description="Denoising steps.", unit="steps", ge=1, le=1000
    )
    scheduler: Scheduler | None = declare(
        group="sampling", description="The sampler. SVD and SV3D sample with euler (the EDM sampler) only."
    )
    guidance: OptionalFloat = declare(
        group="sampling",
        description="Classifier-free guidance scale; 1 or less turns guidance off.",
        ge=0,
        le=100,
    )
    guidance_2: OptionalFloat = declare(
        group="sampling",
        description="Wan 2.2 A14B: guidance of the low-noise expert, which runs the last steps.",
        ge=0,
        le=100,
    )
    flow_shift: OptionalFloat = declare(
        group="sampling",
        description="Flow-matching models (Wan): shift of the noise schedule; higher spends more steps at "
        "high noise (the model cards: 3 at 480p, 5 at 720p).",
        gt=0,
        le=100,
    )
    min_guidance: OptionalFloat = declare(
        group="sampling",
        description="SVD and SV3D: guidance at the first frame (a ramp to max_guidance at the last).",
        ge=0,
        le=100,
    )
    max_guidance: OptionalFloat = declare(
        group="sampling", description="SVD and SV3D: guidance at the last frame.", ge=0, le=100
    )
    seed: Annotated[int | None, BeforeValidator(_random_seed)] = declare(
        group="sampling",
        description="Seed of video 0; video k uses seed + k. -1 or empty: random, printed and recorded.",
        default_text="random",
        ge=0,
        lt=2**63,
    )
    num_videos: Int = declare(1, group="sampling", description="Videos to make.", unit="videos", ge=1, le=64)
    # image / video conditioning
    strength: OptionalFloat = declare(
        group="conditioning",
        description="How far from the input image or video to go: 1 starts from pure noise, small values "
        "stay close to the input.",
        gt=0,
        le=1,
    )
    noise_mode: NoiseMode = declare(
        "independent",
        group="conditioning",
        description="The seeded frames' noise: independent per frame, shared by all frames, or mixed.",
        advanced=True,
    )
    noise_mix: Float = declare(
        0.5,
        group="conditioning",
        description="With noise_mode mixed: the shared part of the noise variance.",
        advanced=True,
        ge=0,
        le=1,
    )
    pin_first_frame: bool = declare(
        False, group="conditioning", description="Hold frame 0 to the input image while denoising."
    )
    fit: Fit = declare(
        "crop", group="conditioning", description="How an input is fitted to the size: crop, pad or stretch."
    )
    background: str = declare(
        "white",
        group="conditioning",
        description="Colour behind transparency and padding: a name or #rrggbb.",
        advanced=True,
    )
    upscale: str | None = declare(
        group="conditioning",
        description="Then run video to video with this model at its own size (e.g. zeroscope-v2-xl).",
    )
    upscale_strength: Float = declare(
        0.65, group="conditioning", description="Strength of the upscale pass.", gt=0, le=1
    )
    motion_bucket_id: OptionalInt = declare(
        group="conditioning", description="SVD: how much motion to make.", ge=0, le=255
    )
    cond_fps: OptionalFloat = declare(
        group="conditioning",
        description="SVD: the frame rate the model is conditioned on (the file's playback rate is fps).",
        unit="fps",
        gt=0,
        le=240,
    )
    noise_aug_strength: OptionalFloat = declare(
        group="conditioning",
        description="SVD: noise added to the conditioning image; more lets the video move away from it.",
        advanced=True,
        ge=0,
        le=10,
    )
    elevations: list[Float] | None = declare(
        group="conditioning",
        description="SV3D_p: camera elevation, one value for the whole orbit or one per frame.",
        unit="degrees",
        flag="--elevation",
        default_text="10",
        min_length=1,
        max_length=64,
    )
    azimuths: list[Float] | None = declare(
        group="conditioning",
        description="SV3D_p: camera azimuth, one value per frame.",
        unit="degrees",
        flag="--azimuth",
        default_text="the camera path's",
        advanced=True,
        min_length=1,
        max_length=64,
    )
    camera_path: CameraPath | None = declare(
        group="conditioning",
        description="SV3D_p: the camera's path around the object.",
        default_text="an even orbit",
    )
    timesteps: list[Float] | None = declare(
        group="sampling",
        description="LTX-Video: the schedule's timesteps, falling from 1000 towards 0, in place of steps "
        "(the distilled models' own schedule is their default).",
        advanced=True,
        min_length=1,
        max_length=1000,
    )
    guidance_rescale: OptionalFloat = declare(
        group="sampling",
        description="LTX-Video: rescale the guided prediction towards the conditional one's spread "
        "(0: off; the distilled models use 0.7).",
        advanced=True,
        ge=0,
        le=1,
    )
    decode_timestep: OptionalFloat = declare(
        group="sampling",
        description="LTX-Video 0.9.1 and later: the timestep the VAE decodes at (its decoder is "
        "timestep-conditioned; 0.05 in the model cards).",
        advanced=True,
        ge=0,
        le=1,
    )
    decode_noise_scale: OptionalFloat = declare(
        group="sampling",
        description="LTX-Video: noise mixed into the latents before decoding (0.025 in the model cards).",
        advanced=True,
        ge=0,
        le=1,
    )
    image_cond_noise_scale: OptionalFloat = declare(
        group="conditioning",
        description="LTX-Video keyframes: noise added to the keyframes' latents at each step, which lets "
        "the model blend them in.",
        advanced=True,
        ge=0,
        le=1,
    )
    image_frame_ratio: OptionalFloat = declare(
        group="conditioning", description="SV3D: share of the frame the centred object fills.", gt=0, le=1
    )
    remove_background: bool = declare(
        True,
        group="conditioning",
        description="SV3D: cut the object out of its background before centring it on white.",
    )
    lora: list[str] | None = declare(
        group="conditioning",
        description="Wan: LoRA weights to apply, a .safetensors file or a Hub repo in the local cache, "
        "each optionally :SCALE (default 1), e.g. style.safetensors:0.8.",
        flag="--lora",
        min_length=1,
        max_length=8,
    )
    # output
    formats: list[Format] = declare(
        lambda: ["mp4"],
        group="output",
        description="Files to write: mp4, webm, gif, frames (numbered PNGs).",
        flag="--format",
        min_length=1,
    )
    fps: OptionalFloat = declare(
        group="output", description="Playback frame rate written into the file.", unit="fps", gt=0, le=240
    )
    out_dir: str = declare("outputs", group="output", description="Output folder.", flag="--out")
    watermark: bool | None = declare(
        group="output",
        description="Embed an invisible watermark (SVD models: on, as Stability's sampler does).",
    )
    save_latents: bool = declare(
        False,
        group="output",
        description="Keep the final latents; `videogen decode` decodes them again.",
        advanced=True,
    )
    # runtime
    device: Device = declare(
        "auto", group="runtime", description="Where to run: auto picks cuda, then mps, then cpu."
    )
    dtype: DType = declare(
        "auto",
        group="runtime",
        description="Precision: auto is fp16 on CUDA and fp32 elsewhere.",
        advanced=True,
    )
    revision: str | None = declare(
        group="runtime",
        description="Hub revision of the weights.",
        default_text="the catalog's",
        advanced=True,
    )
    variant: str | None = declare(
        group="runtime",
        description="Weights variant, e.g. fp16.",
        default_text="the catalog's",
        advanced=True,
    )
    decode_chunk_size: OptionalInt = declare(
        group="runtime",
        description="Frames the VAE decodes at once.",
        unit="frames",
        default_text="as many as fit in free memory",
        advanced=True,
        ge=1,
    )
    offload: Offload | None = declare(
        group="runtime",
        description="CUDA: keep weights on the CPU between uses: model (each component), sequential (each "
        "layer) or group (each layer, fetched ahead on a stream).",
        advanced=True,
    )
    text_encoder_device: TextEncoderDevice = declare(
        "auto",
        group="runtime",
        description="Wan: cpu keeps the text encoder on the CPU, off the accelerator; auto puts it on the "
        "device.",
        advanced=True,
    )
    weights_dtype: WeightsDType | None = declare(
        group="runtime",
        description="Wan: fp8 stores the transformer weights in float8 (half of bf16's memory), computing in "
        "dtype; slightly changes the output.",
        default_text="dtype",
        advanced=True,
    )
    compile: bool = declare(
        False,
        group="runtime",
        description="CUDA: torch.compile the UNet (the first video compiles).",
        advanced=True,
    )
    # speed (recorded in the sidecar like every field)
    preset: Preset | None = declare(
        group="speed",
        description="quality is the model's defaults; balanced and fast trade quality for speed.",
        default_text="quality",
    )
    cache_interval: OptionalInt = declare(
        group="speed",
        description="Run the whole UNet every N steps, only its shallow path between (DeepCache).",
        unit="steps",
        default_text="1, or the preset's",
        ge=1,
        le=50,
    )
    guidance_end: OptionalFloat = declare(
        group="speed",
        description="Share of the steps, from the first, that use guidance; the rest run one pass each.",
        default_text="1, or the preset's",
        ge=0,
        le=1,
    )
    cache_threshold: OptionalFloat = declare(
        group="speed",
        description="First Block Cache: skip the transformer's other blocks while its first block's output "
        "changes by at most this share between steps (0: off).",
        default_text="0, or the preset's",
        ge=0,
        le=1,
    )

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _storable_prompt(cls, value: str | None) -> str | None:
        if value is not None:
            _check_text(value, PROMPT_WHITESPACE)
        return value

    @field_validator("segment_prompts")
    @classmethod
    def _storable_prompts(cls, value: list[str] | None) -> list[str] | None:
        for prompt in value or []:
            _check_text(prompt, PROMPT_WHITESPACE)
        return value

    @field_validator(
        "image",
        "last_image",
        "video",
        "extend",
        "model",
        "revision",
        "variant",
        "upscale",
        "background",
        "out_dir",
    )
    @classmethod
    def _storable_name(cls, value: str | None) -> str | None:
        if value is not None:
            _check_text(value, frozenset())
        return value

    @field_validator("keyframe")
    @classmethod
    def _keyframe_entries(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or []:
            _check_text(entry, frozenset())
            split_keyframe(entry)
        return value

    @field_validator("timesteps")
    @classmethod
    def _falling_timesteps(cls, value: list[float] | None) -> list[float] | None:
        if value is not None:
            if any(not 0 <= t <= 1000 for t in value):
                raise ValueError("each timestep must be between 0 and 1000")
            if any(later >= earlier for earlier, later in zip(value, value[1:], strict=False)):
                raise ValueError(
                    "timesteps must fall from the first to the last, e.g. [1000, 909, 725, 0.03]"
                )
        return value

    @field_validator("lora")
    @classmethod
    def _lora_entries(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or []:
            _check_text(entry, frozenset())
            split_lora(entry)
        return value

    @field_validator("background")
    @classmethod
    def _colour(cls, value: str) -> str:
        from videogen.media.images import parse_colour

        try:
            parse_colour(value)
        except FieldError as exc:
            raise ValueError(exc.allowed) from None
        return value

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


def _check_text(value: str, allowed_controls: frozenset[str]) -> None:
    """Text every store and file format can hold: valid Unicode, no NUL or other control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise ValueError(f"holds {bad!r}, a lone surrogate, which is not valid Unicode") from None
    for char in value:
        if unicodedata.category(char) == "Cc" and char not in allowed_controls:
            raise ValueError(f"holds the control character {char!r}; send plain text")


def split_lora(entry: str) -> tuple[str, float]:
    """``"style.safetensors:0.8"`` -> ("style.safetensors", 0.8); the scale is 1 when left out.

    Only a number after the last ':' is a scale, so a path with a colon (``C:\\loras\\x.safetensors``)
    stays whole.
    """
    source, colon, tail = entry.rpartition(":")
    try:
        scale = float(tail) if colon else None
    except ValueError:
        scale = None
    if scale is None:
        source, scale = entry, 1.0
    if not source.strip():
        raise ValueError(f"{entry!r} names no file or repo; give PATH_OR_REPO or PATH_OR_REPO:SCALE")
    if not math.isfinite(scale):
        raise ValueError(f"{entry!r} has scale {tail!r}; the scale must be a finite number, e.g. 0.8")
    return source, scale


def split_keyframe(entry: str) -> tuple[str, int, float]:
    """``"end.png@96:0.8"`` -> ("end.png", 96, 0.8); the strength is 1 when left out.

    The frame follows the last '@', so a file name may hold '@' itself.
    """
    source, at, tail = entry.rpartition("@")
    frame_text, colon, strength_text = tail.partition(":")
    if not at or not source.strip():
        raise ValueError(f"{entry!r} is not FILE@FRAME or FILE@FRAME:STRENGTH, e.g. end.png@96")
    if not frame_text.isdigit():
        raise ValueError(f"{entry!r}: the frame after '@' must be a whole number from 0, e.g. end.png@96")
    try:
        strength = float(strength_text) if colon else 1.0
    except ValueError:
        strength = math.nan
    if not 0 <= strength <= 1:
        raise ValueError(
            f"{entry!r}: the strength after ':' must be a number from 0 to 1, e.g. end.png@96:0.8"
        )
    return source, int(frame_text), strength


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
        lines.append(f"{field}: {shown(err.get('input'))} is not allowed; {allowed}")
    return "\n".join(lines)


def _allowed_text(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        bound = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {bound if isinstance(bound, int) else f'{bound:g}'}"
    if kind == "string_too_long":
        return f"at most {ctx['max_length']} characters"
    if kind == "too_long":
        return f"give at most {ctx['max_length']} values"
    if kind == "too_short":
        return f"give at least {ctx['min_length']} values"
    if kind == "literal_error":
        return f"allowed: {ctx['expected']}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"].lower()


def load_config(path: Path) -> dict[str, Any]:
    """Read a YAML config whose keys are request fields, or a video's JSON sidecar (its ``request``)."""
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
    if isinstance(data.get("request"), dict) and "videogen_version" in data:
        return replayable(data["request"])  # a sidecar: the resolved request that made the video
    return data


def replayable(recorded: dict[str, Any]) -> dict[str, Any]:
    """A recorded request (a sidecar's, a latents file's) without fields its model does not read:
    records written before such fields were refused hold them, filled with defaults."""
    try:
        spec = resolve_model(str(recorded.get("model", Request.model_fields["model"].default)))
    except UserError:
        return recorded  # the model is gone: resolving the request will say so
    taken = taken_fields(spec)
    return {name: value for name, value in recorded.items() if name in taken}


def resolve_request(request: Request) -> tuple[Request, ModelSpec]:
    """Fill the model's defaults into ``request`` and check the model's limits.

    Returns the completed request (every shape/sampling field the model reads set) and the model's
    spec. Fields the model does not read stay empty, so the record never claims they were used.
    """
    spec = resolve_model(request.model)
    d = spec.defaults
    check_family_fields(request, spec)
    preset = preset_fields(request.preset, spec.family)
    request = request.model_copy(
        update={name: value for name, value in preset.items() if getattr(request, name) is None}
    )
    taken = taken_fields(spec)
    seeded_from_input = "strength" in taken and bool(request.image or request.video)
    speed = {"cache_interval": request.cache_interval or 1}
    speed["guidance_end"] = 1.0 if request.guidance_end is None else request.guidance_end
    speed["cache_threshold"] = request.cache_threshold or 0.0
    filled = request.model_copy(
        update={
            **{name: value for name, value in speed.items() if name in taken},
            "num_frames": request.num_frames or d.num_frames,
            "height": request.height or d.height,
            "width": request.width or d.width,
            **_schedule(request, d, taken),
            "scheduler": (request.scheduler or d.scheduler) if "scheduler" in taken else None,
            "fps": request.fps or d.fps,
            "revision": request.revision or spec.revision,
            "variant": request.variant or spec.variant,
            "strength": request.strength or (d.strength if seeded_from_input else None),
            "watermark": d.watermark if request.watermark is None else request.watermark,
            **{name: _or(request, name, d) for name in DEFAULTED if name in taken},
        }
    )
    check_limits(filled, spec)
    return filled, spec


#: Fields that take the model's default when left out, for the models that read them.
DEFAULTED = ("guidance", "guidance_2", "flow_shift", "motion_bucket_id", "cond_fps", "noise_aug_strength",
             "min_guidance", "max_guidance", "image_frame_ratio", "decode_timestep", "decode_noise_scale",
             "image_cond_noise_scale", "guidance_rescale")  # fmt: skip


def _schedule(request: Request, defaults: object, taken: frozenset[str]) -> dict[str, object]:
    """``steps`` and, for models that read it, ``timesteps``: given timesteps set the step count; a
    model's own schedule (a distilled model's) applies unless steps or timesteps are given."""
    if "timesteps" not in taken:
        return {"steps": request.steps or defaults.steps}
    timesteps = request.timesteps
    if timesteps is None and request.steps is None and defaults.timesteps:
        timesteps = list(defaults.timesteps)
    if timesteps is None:
        return {"steps": request.steps or defaults.steps, "timesteps": None}
    if request.steps is not None and request.steps != len(timesteps):
        raise FieldError(
            "steps", request.steps, f"give steps or timesteps, not both ({len(timesteps)} timesteps)"
        )
    return {"steps": len(timesteps), "timesteps": timesteps}


#: Fields that only matter for a chained video (segments, or a video extended).
CHAIN_FIELDS = ("overlap", "segment_prompts", "segment_strength", "colour_match", "anchor_image")
#: Fields that only matter with an image or video input.
INPUT_FIELDS = ("strength", "noise_mode", "noise_mix", "pin_first_frame", "fit", "background")


def taken_fields(spec: ModelSpec) -> frozenset[str]:
    """The request fields ``spec``'s model reads, as its family declares them."""
    return KINDS[spec.kind].taken


def given(request: Request, name: str) -> bool:
    """Whether ``name`` holds something other than the schema's default (a re-submitted record counts
    as giving only what differs from the defaults)."""
    default = Request.model_fields[name].get_default(call_default_factory=True)
    return getattr(request, name) != default


def _or(request: Request, name: str, defaults: object) -> object:
    value = getattr(request, name)
    return getattr(defaults, name) if value is None else value


def check_family_fields(request: Request, spec: ModelSpec) -> None:
    """A control the model does not have, or one that does nothing here, is an error, not ignored."""
    kind = KINDS[spec.kind]
    for name in Request.model_fields:
        if name not in kind.taken and given(request, name):
            if name in kind.ignored:
                log.warning(kind.ignored[name].format(model=spec.id))
                continue
            *others, last = kinds_taking(name) or ["no"]
            kinds = f"{', '.join(others)} and {last}" if others else last
            why = kind.refusals.get(name, f"only {kinds} models use it")
            raise FieldError(name, getattr(request, name), f"{spec.id} does not use it ({why})")
    for name, why in kind.required.items():
        if not getattr(request, name):
            raise FieldError(name, getattr(request, name), f"{spec.id} needs it ({why})")
    for name, allowed in kind.choices.items():
        value = getattr(request, name)
        if value is not None and value not in allowed:
            raise FieldError(name, value, f"{spec.id} takes only {', '.join(allowed)}")
    if not (request.image or request.video or request.keyframe):
        for name in INPUT_FIELDS:
            if given(request, name):
                raise FieldError(name, getattr(request, name), "only used with an image or video input")
    if request.segments == 1 and request.extend is None:
        for name in CHAIN_FIELDS:
            if given(request, name):
                raise FieldError(
                    name, getattr(request, name), "only used with segments (2 or more) or extend"
                )
    if given(request, "noise_mix") and request.noise_mode != "mixed":
        raise FieldError("noise_mix", request.noise_mix, "only used with noise_mode 'mixed'")
    if given(request, "upscale_strength") and request.upscale is None:
        raise FieldError("upscale_strength", request.upscale_strength, "only used with upscale")


def check_limits(request: Request, spec: ModelSpec) -> None:
    """Raise FieldError for values the model cannot take."""
    limits = spec.limits
    if request.num_frames > limits.max_frames:
        raise FieldError("num_frames", request.num_frames, f"{spec.id} takes 1 to {limits.max_frames} frames")
    if limits.frames is not None and request.num_frames != limits.frames:
        raise FieldError("num_frames", request.num_frames, f"{spec.id} takes exactly {limits.frames} frames")
    if (request.num_frames - 1) % limits.frame_step:
        step = limits.frame_step
        allowed = f"{spec.id} takes {step}k+1 frames (1, {step + 1}, {2 * step + 1}, ...)"
        raise FieldError("num_frames", request.num_frames, allowed)
    for name in ("height", "width"):
        value = getattr(request, name)
        if value > limits.max_side:
            raise FieldError(name, value, f"{spec.id} takes at most {limits.max_side} pixels")
        if value % limits.size_multiple:
            raise FieldError(name, value, f"{spec.id} takes multiples of {limits.size_multiple} pixels")
    if limits.sizes and (request.height, request.width) not in limits.sizes:
        sizes = ", ".join(f"{w}x{h}" for h, w in limits.sizes)
        raise FieldError("height", request.height, f"{spec.id} takes only {sizes} (width x height)")
    if spec.kind == "sv3d_p":
        from videogen.families.sv3d_camera import orbit_angles

        orbit_angles(request.num_frames, request.elevations, request.azimuths, request.camera_path)
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
    if request.last_image and not request.image:
        raise FieldError("last_image", request.last_image, "give image too: the video runs from image to it")
    for entry in request.keyframe or []:
        frame = split_keyframe(entry)[1]
        if frame >= request.num_frames:
            last = request.num_frames - 1
            allowed = f"the frame after '@' must be from 0 to {last} (num_frames is {request.num_frames})"
            raise FieldError("keyframe", entry, allowed)
    if "t2v" not in spec.tasks and not (request.image or request.extend):
        raise FieldError("image", None, f"{spec.id} turns an image into a video; pass an image (or extend)")
    if request.upscale:
        upscaler = resolve_model(request.upscale)
        if "v2v" not in upscaler.tasks:
            raise FieldError("upscale", request.upscale, f"{upscaler.id} cannot take a video to upscale")
