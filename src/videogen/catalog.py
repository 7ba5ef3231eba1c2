"""The model catalog: model ids -> family, weights source, defaults and limits.

A model is either a catalog id (``modelscope-t2v``) or a local directory in diffusers layout,
whose family is read from its ``model_index.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from videogen.errors import FieldError, UserError
from videogen.families import PIPELINE_FAMILIES
from videogen.families.svd_layout import vector_layout


@dataclass(frozen=True)
class Defaults:
    """Values a request gets for the fields it leaves out."""

    num_frames: int
    height: int
    width: int
    steps: int
    guidance: float
    fps: float
    scheduler: str = "ddim"
    strength: float = 0.7
    # Stable Video Diffusion (None for families that have no such control)
    motion_bucket_id: int | None = None
    cond_fps: float | None = None
    noise_aug_strength: float | None = None
    min_guidance: float | None = None
    max_guidance: float | None = None
    watermark: bool = False
    # SV3D
    image_frame_ratio: float | None = None
    # flow-matching models (Wan): the schedule's shift, and the low-noise expert's guidance (A14B)
    flow_shift: float | None = None
    guidance_2: float | None = None
    # LTX-Video: the timestep-conditioned VAE's decode settings, keyframe noise, CFG rescale, and a
    # distilled model's own schedule (None: ``steps`` evenly)
    decode_timestep: float | None = None
    decode_noise_scale: float | None = None
    image_cond_noise_scale: float | None = None
    guidance_rescale: float | None = None
    timesteps: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Limits:
    """Hard limits a request must stay within for this model."""

    max_frames: int = 64
    max_side: int = 1280
    #: exact (height, width) sizes the model takes, when it takes only some
    sizes: tuple[tuple[int, int], ...] = ()
    #: exact frame count the model takes, when it takes only one
    frames: int | None = None
    #: frame counts are ``frame_step * k + 1`` (the VAE compresses time in groups of frame_step)
    frame_step: int = 1
    #: height and width are multiples of this (the VAE's downscale times the patch size)
    size_multiple: int = 8


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the catalog, or a local directory described the same way."""

    id: str
    family: str
    tasks: tuple[str, ...]
    defaults: Defaults
    limits: Limits = field(default_factory=Limits)
    repo_id: str | None = None
    revision: str = "main"
    variant: str | None = None
    local_dir: Path | None = None
    #: a single original-layout checkpoint in the repo, converted to diffusers layout on first use
    checkpoint: str | None = None
    #: an SV3D-style model: the input is an object to orbit, centred on white
    orbit: bool = False
    #: an orbit model that takes camera angles (SV3D_p)
    camera: bool = False
    #: the kind of model (``videogen.families.KINDS``), for families whose models read different
    #: fields and whose kind no other attribute tells (Wan)
    kind_name: str | None = None
    #: the full-size architecture in ``videogen.architectures`` (for random-weight benchmarks)
    architecture: str | None = None
    license: str = ""
    vram_gb: float = 0.0
    description: str = ""

    @property
    def source(self) -> str:
        """Where the weights come from, for people: a Hub repo id or a folder."""
        return str(self.local_dir) if self.local_dir else f"{self.repo_id}@{self.revision}"

    @property
    def kind(self) -> str:
        """What decides the fields a model reads: unet3d, svd, sv3d_u (orbit) or sv3d_p (orbit + camera),
        or one of the Wan kinds."""
        if self.kind_name is not None:
            return self.kind_name
        if self.family != "svd":
            return self.family
        if not self.orbit:
            return "svd"
        return "sv3d_p" if self.camera else "sv3d_u"

    @property
    def components(self) -> tuple[str, ...]:
        """Subfolders the family's loader reads."""
        return FAMILY_COMPONENTS[self.family] + KIND_COMPONENTS.get(self.kind, ())


FAMILY_COMPONENTS: dict[str, tuple[str, ...]] = {
    "unet3d": ("unet", "vae", "text_encoder", "tokenizer", "scheduler"),
    "svd": ("unet", "vae", "image_encoder", "feature_extractor", "scheduler"),
    "wan": ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"),
    "ltx": ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"),
}
#: components some kinds of model have besides their family's
KIND_COMPONENTS: dict[str, tuple[str, ...]] = {
    "wan_a14b": ("transformer_2",),
    "wan_a14b_i2v": ("transformer_2",),
    "wan_i2v": ("image_encoder", "image_processor"),
    "wan_flf2v": ("image_encoder", "image_processor"),
}

UNET3D_TASKS = ("t2v", "i2v", "v2v")
# Stability's original sampler: fps_id 6, motion bucket 127, cond_aug 0.02, decoding_t 14, and
# playback at fps_id + 1. Guidance grows linearly over the frames from min to max.
_SVD = Defaults(
    num_frames=14,
    height=576,
    width=1024,
    steps=25,
    guidance=2.5,
    fps=7.0,
    scheduler="euler",
    motion_bucket_id=127,
    cond_fps=6.0,
    noise_aug_strength=0.02,
    min_guidance=1.0,
    max_guidance=2.5,
    watermark=True,
)
_SVD_XT = replace(_SVD, num_frames=25, steps=30, min_guidance=1.5, max_guidance=3.0, guidance=3.0)
# SV3D: 21 views at 576x576, cond_aug 1e-5 fixed, triangle guidance 1.0 -> 2.5 -> 1.0.
_SV3D = replace(
    _SVD, num_frames=21, height=576, width=576, steps=50, noise_aug_strength=1e-5, image_frame_ratio=0.85
)
_SV3D_LIMITS = Limits(max_frames=21, sizes=((576, 576),), frames=21)
_STABILITY = "stability-ai-community (see the model card)"

SVD_MODELS = (
    ModelSpec(
        id="svd",
        family="svd",
        tasks=("i2v",),
        defaults=_SVD,
        repo_id="stabilityai/stable-video-diffusion-img2vid",
        architecture="svd",
        license=_STABILITY,
        vram_gb=12.0,
        description="Stable Video Diffusion: image to 14 frames at 1024x576",
    ),
    ModelSpec(
        id="svd-xt",
        family="svd",
        tasks=("i2v",),
        defaults=_SVD_XT,
        repo_id="stabilityai/stable-video-diffusion-img2vid-xt",
        architecture="svd-xt",
        license=_STABILITY,
        vram_gb=16.0,
        description="Stable Video Diffusion XT: image to 25 frames at 1024x576",
    ),
    ModelSpec(
        id="svd-xt-1.1",
        family="svd",
        tasks=("i2v",),
        defaults=_SVD_XT,
        repo_id="stabilityai/stable-video-diffusion-img2vid-xt-1-1",
        architecture="svd-xt",
        license=_STABILITY,
        vram_gb=16.0,
        description="SVD XT 1.1: fine-tuned at fixed conditioning (motion 127, fps 6)",
    ),
    ModelSpec(
        id="sv3d-u",
        family="svd",
        tasks=("i2v",),
        defaults=_SV3D,
        limits=_SV3D_LIMITS,
        repo_id="stabilityai/sv3d",
        checkpoint="sv3d_u.safetensors",
        orbit=True,
        architecture="sv3d-u",
        license=_STABILITY,
        vram_gb=20.0,
        description="SV3D_u: 21-view orbit video of an object, no camera control",
    ),
    ModelSpec(
        id="sv3d-p",
        family="svd",
        tasks=("i2v",),
        defaults=_SV3D,
        limits=_SV3D_LIMITS,
        repo_id="stabilityai/sv3d",
        checkpoint="sv3d_p.safetensors",
        orbit=True,
        camera=True,
        architecture="sv3d-p",
        license=_STABILITY,
        vram_gb=20.0,
        description="SV3D_p: 21-view orbit video along a chosen camera path (elevation, azimuth)",
    ),
)
_MODELSCOPE = Defaults(num_frames=16, height=256, width=256, steps=50, guidance=9.0, fps=8.0)

# Wan's own sampling settings (its generate.py and the model cards): UniPC with flow sigmas, shift 3
# at 480p and 5 at 720p (16 for first-last-frame), 50 steps (40 for 2.1 I2V and the A14B experts).
_WAN_480 = Defaults(
    num_frames=81, height=480, width=832, steps=50, guidance=5.0, fps=16.0, scheduler="unipc", flow_shift=3.0
)
_WAN_720 = replace(_WAN_480, height=720, width=1280, flow_shift=5.0)
_WAN_LIMITS = Limits(max_frames=161, frame_step=4, size_multiple=16)
_WAN_LICENSE = "apache-2.0"
WAN_TASKS = {
    "wan_t2v": ("t2v", "v2v"),
    "wan_ti2v": ("t2v", "i2v"),
    "wan_a14b": ("t2v",),
    "wan_i2v": ("i2v",),
    "wan_flf2v": ("i2v",),
    "wan_a14b_i2v": ("i2v",),
}


def _wan(
    model_id: str, kind: str, repo: str, defaults: Defaults, vram_gb: float, about: str, **more
) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        family="wan",
        kind_name=kind,
        tasks=WAN_TASKS[kind],
        defaults=defaults,
        limits=more.pop("limits", _WAN_LIMITS),
        repo_id=f"Wan-AI/{repo}",
        license=_WAN_LICENSE,
        vram_gb=vram_gb,
        description=about,
        **more,
    )


WAN_MODELS = (
    _wan("wan2.1-t2v-1.3b", "wan_t2v", "Wan2.1-T2V-1.3B-Diffusers", replace(_WAN_480, strength=0.8), 8.2,
         "Wan 2.1 text to video 1.3B (480x832, 81 frames)", architecture="wan2.1-t2v-1.3b"),
    _wan("wan2.1-t2v-14b", "wan_t2v", "Wan2.1-T2V-14B-Diffusers", replace(_WAN_720, strength=0.8), 40.0,
         "Wan 2.1 text to video 14B (720x1280 or 480x832)"),
    _wan("wan2.1-i2v-14b-480p", "wan_i2v", "Wan2.1-I2V-14B-480P-Diffusers", replace(_WAN_480, steps=40), 40.0,
         "Wan 2.1 image to video 14B at 480x832"),
    _wan("wan2.1-i2v-14b-720p", "wan_i2v", "Wan2.1-I2V-14B-720P-Diffusers", replace(_WAN_720, steps=40), 40.0,
         "Wan 2.1 image to video 14B at 720x1280"),
    _wan("wan2.1-flf2v-14b", "wan_flf2v", "Wan2.1-FLF2V-14B-720P-diffusers",
         replace(_WAN_720, flow_shift=16.0), 40.0, "Wan 2.1 first and last frame to video 14B at 720x1280"),
    _wan("wan2.2-ti2v-5b", "wan_ti2v", "Wan2.2-TI2V-5B-Diffusers",
         replace(_WAN_720, num_frames=121, height=704, fps=24.0), 24.0,
         "Wan 2.2 text or image to video 5B (704x1280, 121 frames at 24 fps)",
         limits=replace(_WAN_LIMITS, max_frames=241, size_multiple=32), architecture="wan2.2-ti2v-5b"),
    _wan("wan2.2-t2v-a14b", "wan_a14b", "Wan2.2-T2V-A14B-Diffusers",
         replace(_WAN_720, steps=40, guidance=4.0, guidance_2=3.0, flow_shift=12.0), 80.0,
         "Wan 2.2 text to video, two 14B experts (720x1280)"),
    _wan("wan2.2-i2v-a14b", "wan_a14b_i2v", "Wan2.2-I2V-A14B-Diffusers",
         replace(_WAN_720, steps=40, guidance=3.5, guidance_2=3.5), 80.0,
         "Wan 2.2 image to video, two 14B experts (720x1280)"),
)  # fmt: skip

# LTX-Video (Lightricks; diffusers' docs and the model cards): 24 fps, frames 8k+1, sides multiples of
# 32. 0.9.1 and later decode with a timestep-conditioned VAE (decode_timestep 0.05, decode noise
# 0.025) and take keyframes well from 0.9.5 (image_cond_noise_scale 0.025). The distilled 0.9.8 runs
# its own 8-step schedule without guidance, rescaled by 0.7.
_LTX = Defaults(
    num_frames=161, height=480, width=704, steps=50, guidance=3.0, fps=24.0, scheduler="euler", strength=0.8,
    decode_timestep=0.0, decode_noise_scale=0.0, image_cond_noise_scale=0.15, guidance_rescale=0.0,
)  # fmt: skip
_LTX_095 = replace(
    _LTX, height=512, width=768, steps=40, decode_timestep=0.05, decode_noise_scale=0.025,
    image_cond_noise_scale=0.025,
)  # fmt: skip
_LTX_DISTILLED = replace(
    _LTX_095, height=480, width=832, guidance=1.0, guidance_rescale=0.7, image_cond_noise_scale=0.0,
    timesteps=(1000.0, 993.0, 987.0, 981.0, 975.0, 909.0, 725.0, 0.03), steps=8,
)  # fmt: skip
_LTX_LIMITS = Limits(max_frames=257, frame_step=8, size_multiple=32)
LTX_TASKS = ("t2v", "i2v", "v2v")


def _ltx(model_id: str, repo: str, defaults: Defaults, vram_gb: float, about: str, **more) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        family="ltx",
        tasks=LTX_TASKS,
        defaults=defaults,
        limits=_LTX_LIMITS,
        repo_id=f"Lightricks/{repo}",
        license="LTXV Open Weights License",
        vram_gb=vram_gb,
        description=about,
        **more,
    )


LTX_MODELS = (
    _ltx("ltx-video", "LTX-Video", _LTX, 12.0,
         "LTX-Video 0.9.0 2B: text or image to video (704x480, 161 frames)", architecture="ltx-video"),
    _ltx("ltx-video-0.9.5", "LTX-Video-0.9.5", _LTX_095, 12.0,
         "LTX-Video 0.9.5 2B: keyframes anywhere in the clip (768x512, 161 frames)"),
    _ltx("ltx-video-distilled", "LTX-Video-0.9.8-13B-distilled", _LTX_DISTILLED, 32.0,
         "LTX-Video 0.9.8 13B distilled: 8 steps, no guidance (832x480)"),
)  # fmt: skip

CATALOG: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="modelscope-t2v",
            family="unet3d",
            tasks=UNET3D_TASKS,
            defaults=_MODELSCOPE,
            repo_id="ali-vilab/text-to-video-ms-1.7b",
            architecture="modelscope",
            license="cc-by-nc-4.0",
            vram_gb=8.0,
            description="ModelScope text-to-video 1.7B (256x256, 16 frames)",
        ),
        ModelSpec(
            id="zeroscope-v2-576w",
            family="unet3d",
            tasks=UNET3D_TASKS,
            defaults=Defaults(num_frames=24, height=320, width=576, steps=40, guidance=9.0, fps=8.0),
            repo_id="cerspense/zeroscope_v2_576w",
            architecture="modelscope",
            license="cc-by-nc-4.0",
            vram_gb=8.0,
            description="Zeroscope v2 576w: ModelScope fine-tune at 576x320, 24 frames",
        ),
        ModelSpec(
            id="zeroscope-v2-xl",
            family="unet3d",
            tasks=UNET3D_TASKS,
            defaults=Defaults(num_frames=24, height=576, width=1024, steps=40, guidance=9.0, fps=8.0),
            repo_id="cerspense/zeroscope_v2_XL",
            architecture="modelscope",
            license="cc-by-nc-4.0",
            vram_gb=16.0,
            description="Zeroscope v2 XL at 1024x576, meant as an upscaler of 576w results",
        ),
        *SVD_MODELS,
        *WAN_MODELS,
        *LTX_MODELS,
    )
}


def known_ids() -> str:
    """The catalog ids as one comma-separated string, for error messages."""
    return ", ".join(CATALOG)


def resolve_model(model: str) -> ModelSpec:
    """Turn a catalog id or a local directory into a ModelSpec.

    Raises FieldError naming the known ids when ``model`` is neither.
    """
    if model in CATALOG:
        return CATALOG[model]
    path = Path(model).expanduser()
    if path.is_dir():
        return spec_for_local_dir(path)
    raise FieldError("model", model, f"known models: {known_ids()}; or a local directory in diffusers layout")


def spec_for_local_dir(path: Path) -> ModelSpec:
    """Describe a local diffusers-layout folder: family from model_index.json, defaults from the UNet."""
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise UserError(f"model: {str(path)!r} is a folder but has no model_index.json (diffusers layout)")
    try:
        index = json.loads(index_file.read_text())
        class_name = index["_class_name"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"model: {index_file} is not a valid model_index.json ({exc})") from exc
    family = PIPELINE_FAMILIES.get(class_name)
    if family is None:
        raise UserError(
            f"model: {str(path)!r} holds a {class_name}, which videogen cannot run; "
            f"supported: {', '.join(PIPELINE_FAMILIES)}"
        )
    if family == "wan":
        return _local_wan(path, index)
    if family == "ltx":
        return _local_ltx(path, index)
    unet = _read_json(path / "unet" / "config.json")
    side = _default_side(path, unet)
    orbit = camera = False
    if family == "svd":
        layout = vector_layout(unet).kind
        orbit, camera = layout != "svd", layout == "sv3d_p"
        base = _SV3D if orbit else _SVD
        frames = int(unet.get("num_frames", base.num_frames))
        defaults = replace(base, height=side, width=side, num_frames=frames)
    else:
        defaults = replace(_MODELSCOPE, height=side, width=side)
    return ModelSpec(
        id=path.name,
        family=family,
        tasks=UNET3D_TASKS if family == "unet3d" else ("i2v",),
        defaults=defaults,
        local_dir=path.resolve(),
        orbit=orbit,
        camera=camera,
        description=f"local {class_name}",
    )


def _local_wan(path: Path, index: dict) -> ModelSpec:
    """A local Wan folder: its kind from the pipeline's components and settings in model_index.json."""
    has = {name for name, value in index.items() if isinstance(value, list) and value[0] is not None}
    experts = "transformer_2" in has and index.get("boundary_ratio") is not None
    if index["_class_name"] == "WanImageToVideoPipeline":
        transformer = _read_json(path / "transformer" / "config.json")
        two_images = transformer.get("pos_embed_seq_len") is not None  # FLF2V's first/last positions
        kind = "wan_a14b_i2v" if experts else "wan_flf2v" if two_images else "wan_i2v"
    elif index.get("expand_timesteps"):
        kind = "wan_ti2v"
    else:
        kind = "wan_a14b" if experts else "wan_t2v"
    limits = replace(_WAN_LIMITS, size_multiple=32) if kind == "wan_ti2v" else _WAN_LIMITS
    # the schedule's shift is left to the folder's scheduler config (the engine reads it there)
    guidance_2 = _WAN_480.guidance if experts else None
    defaults = replace(_WAN_480, strength=0.8, guidance_2=guidance_2, flow_shift=None)
    return ModelSpec(
        id=path.name,
        family="wan",
        kind_name=kind,
        tasks=WAN_TASKS[kind],
        defaults=defaults,
        limits=limits,
        local_dir=path.resolve(),
        description=f"local {index['_class_name']} ({kind})",
    )


def _local_ltx(path: Path, index: dict) -> ModelSpec:
    """A local LTX-Video folder: a timestep-conditioned VAE (0.9.1 and later) gets 0.9.5's settings."""
    vae = _read_json(path / "vae" / "config.json")
    defaults = _LTX_095 if vae.get("timestep_conditioning") else _LTX
    return ModelSpec(
        id=path.name,
        family="ltx",
        tasks=LTX_TASKS,
        defaults=defaults,
        limits=_LTX_LIMITS,
        local_dir=path.resolve(),
        description=f"local {index['_class_name']}",
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"model: cannot read {path} ({exc})") from None


def _default_side(path: Path, unet: dict) -> int:
    """Default pixel side of a local model: the UNet's sample_size times the VAE's downscale."""
    vae = _read_json(path / "vae" / "config.json")
    scale = 2 ** (len(vae.get("block_out_channels", (0, 0, 0, 0))) - 1)
    return int(unet.get("sample_size", 32)) * scale
