"""The model families, and which request fields each kind of model takes.

Each family declares here the fields its models read, so that every front-end answers "field X
does not apply to model Y" from one table: the CLI and YAML when a request is resolved, the REST
API at submit, and the UI, which shows a family only the controls it takes. The engines are in
the family modules (``unet3d.py``, ``svd.py``, ``wan.py``, ``ltx.py``); this module imports none of
them, nor torch.

A model's *kind* (``ModelSpec.kind``) is its family, refined where models of one family read
different fields: SVD, SV3D_u (an orbit) and SV3D_p (an orbit along a camera path); Wan 2.1 text
to video, Wan 2.2 TI2V, the two-expert Wan 2.2 A14B, and image to video with Wan 2.1 or 2.2.
LTX-Video is one kind: every release takes text, an image, keyframes and a video.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _fields(names: str) -> frozenset[str]:
    """Field names written as one space-separated string: the tables below read better that way."""
    return frozenset(names.split())


#: Fields every model reads.
COMMON_FIELDS = _fields(
    "model revision variant num_frames height width steps seed num_videos max_input_pixels formats fps "
    "out_dir watermark device dtype save_latents segments overlap colour_match extend interpolate"
)
#: Chained segments continued by video to video (the models that take a video): a prompt per segment
#: and the continuation's strength (Wan reads segment prompts too: its _WAN_FIELDS hold them).
_BY_VIDEO = _fields("segment_prompts segment_strength")
#: The UNet families' speed and memory measures (DeepCache, CFG cut-off, offload, compile, chunked decode).
_UNET_FIELDS = _fields("image decode_chunk_size offload compile preset cache_interval guidance_end")
#: What every Wan model reads besides the common fields (First Block Cache: ``cache_threshold``).
_WAN_FIELDS = _fields(
    "prompt negative_prompt scheduler guidance flow_shift preset cache_threshold lora "
    "offload text_encoder_device weights_dtype segment_prompts"
)


#: What LTX-Video reads: text, image, keyframes or video to video; Euler flow matching (no scheduler choice).
_LTX_FIELDS = (
    _fields(
        "prompt negative_prompt guidance guidance_rescale timesteps image keyframe video strength fit "
        "background decode_timestep decode_noise_scale image_cond_noise_scale preset cache_threshold offload"
    )
    | _BY_VIDEO
)
_LTX_REFUSALS = {
    "scheduler": "LTX-Video samples with its own flow-matching Euler schedule; timesteps sets it",
    "flow_shift": "LTX-Video shifts its schedule by the video's length itself",
}


@dataclass(frozen=True)
class Kind:
    """One kind of model: the fields it reads besides the common ones, and why it refuses some
    fields where a plain "does not use it" would leave people stuck."""

    name: str
    family: str
    label: str
    fields: frozenset[str]
    refusals: dict[str, str]
    #: fields whose allowed values are fewer for this kind than the schema's
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: fields accepted but not read, with a warning saying why (a comparison sends every model
    #: of a grid the same prompt)
    ignored: dict[str, str] = field(default_factory=dict)
    #: fields a request must give for this kind, and why
    required: dict[str, str] = field(default_factory=dict)

    @property
    def taken(self) -> frozenset[str]:
        return COMMON_FIELDS | self.fields


_SVD_REFUSALS = {"guidance": "these models guide each frame between min_guidance and max_guidance"}
#: SVD and SV3D sample with Euler (the EDM sampler) only
_EULER = {"scheduler": ("euler",)}
_NO_PROMPT = {"prompt": "the prompt is ignored: {model} is conditioned on the image only"}
_SV3D_REFUSALS = {
    **_SVD_REFUSALS,
    "motion_bucket_id": "SV3D is conditioned on the camera only",
    "cond_fps": "SV3D is conditioned on the camera only",
    "noise_aug_strength": "SV3D's conditioning noise is fixed at 1e-5",
    "fit": "SV3D centres the object on white by itself (image_frame_ratio)",
    "background": "SV3D centres the object on white by itself (image_frame_ratio)",
}
_SV3D_FIELDS = _UNET_FIELDS | _fields(
    "scheduler min_guidance max_guidance image_frame_ratio remove_background"
)
_CAMERA_FIELDS = _fields("elevations azimuths camera_path")
_ONLY_SV3D_P = {name: "only SV3D_p models (sv3d-p) take camera angles" for name in _CAMERA_FIELDS}
#: Wan samples with flow matching: UniPC (its default) or Euler
_FLOW = {"scheduler": ("unipc", "euler")}
_WAN_REFUSALS = {
    "guidance_2": "only the two-expert Wan 2.2 A14B models have a second guidance",
    "last_image": "only Wan 2.1 FLF2V and Wan 2.2 I2V-A14B end on a given frame",
    "image": "for image + prompt use wan2.2-ti2v-5b or a Wan image-to-video model",
    "video": "only Wan 2.1 text-to-video models start from a video",
}

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "unet3d",
            "unet3d",
            "Text / image / video to video (ModelScope, Zeroscope)",
            _UNET_FIELDS
            | _fields(
                "prompt negative_prompt video scheduler guidance strength noise_mode noise_mix "
                "pin_first_frame fit background upscale upscale_strength"
            )
            | _BY_VIDEO,
            {},
        ),
        Kind(
            "svd",
            "svd",
            "Image to video (Stable Video Diffusion)",
            _UNET_FIELDS
            | _fields(
                "scheduler fit background motion_bucket_id cond_fps noise_aug_strength min_guidance "
                "max_guidance anchor_image"
            ),
            {**_SVD_REFUSALS, **_ONLY_SV3D_P},
            _EULER,
            _NO_PROMPT,
        ),
        Kind(
            "sv3d_u",
            "svd",
            "Orbit of an object (SV3D_u)",
            _SV3D_FIELDS,
            {**_SV3D_REFUSALS, **_ONLY_SV3D_P},
            _EULER,
            _NO_PROMPT,
        ),
        Kind(
            "sv3d_p",
            "svd",
            "Orbit on a camera path (SV3D_p)",
            _SV3D_FIELDS | _CAMERA_FIELDS,
            _SV3D_REFUSALS,
            _EULER,
            _NO_PROMPT,
        ),
        Kind(
            "wan_t2v",
            "wan",
            "Text / video to video (Wan 2.1)",
            _WAN_FIELDS | _fields("video strength fit background segment_strength"),
            _WAN_REFUSALS,
            _FLOW,
        ),
        Kind(
            "wan_ti2v",
            "wan",
            "Text / image to video (Wan 2.2 TI2V)",
            _WAN_FIELDS | _fields("image fit background"),
            _WAN_REFUSALS,
            _FLOW,
        ),
        Kind(
            "wan_a14b",
            "wan",
            "Text to video, two experts (Wan 2.2 A14B)",
            _WAN_FIELDS | _fields("guidance_2"),
            _WAN_REFUSALS,
            _FLOW,
        ),
        Kind(
            "wan_i2v",
            "wan",
            "Image to video (Wan 2.1 I2V)",
            _WAN_FIELDS | _fields("image fit background anchor_image"),
            _WAN_REFUSALS,
            _FLOW,
        ),
        Kind(
            "wan_flf2v",
            "wan",
            "First and last frame to video (Wan 2.1 FLF2V)",
            _WAN_FIELDS | _fields("image last_image fit background"),
            _WAN_REFUSALS,
            _FLOW,
            required={"last_image": "a first-and-last-frame model needs the frame the video ends on"},
        ),
        Kind(
            "wan_a14b_i2v",
            "wan",
            "Image (and last frame) to video, two experts (Wan 2.2 I2V A14B)",
            _WAN_FIELDS | _fields("image last_image guidance_2 fit background"),
            _WAN_REFUSALS,
            _FLOW,
        ),
        Kind(
            "ltx",
            "ltx",
            "Text / image / keyframes / video to video (LTX-Video)",
            _LTX_FIELDS,
            _LTX_REFUSALS,
        ),
    )
}

#: diffusers pipeline class names -> family, for local diffusers-layout folders.
PIPELINE_FAMILIES = {
    "TextToVideoSDPipeline": "unet3d",
    "VideoToVideoSDPipeline": "unet3d",
    "StableVideoDiffusionPipeline": "svd",
    "WanPipeline": "wan",
    "WanImageToVideoPipeline": "wan",
    "WanVideoToVideoPipeline": "wan",
    "LTXPipeline": "ltx",
    "LTXImageToVideoPipeline": "ltx",
    "LTXConditionPipeline": "ltx",
}


def kinds_taking(name: str) -> list[str]:
    """The kinds of model that read field ``name`` (all of them for a common field)."""
    return [kind.name for kind in KINDS.values() if name in kind.taken]
