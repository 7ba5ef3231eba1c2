"""What SV3D is conditioned on, where it differs from SVD (Stability's sv3d_u.yaml and sv3d_p.yaml).

- The added vector: [cond_aug] for the whole video (SV3D_u), or [cond_aug, polar, azimuth] per frame
  (SV3D_p), with cond_aug fixed to 1e-5 and guidance a triangle over the frames.
- SV3D_p's vector changes per frame, which the stock UNet forward cannot take: it embeds one vector
  per video. ``unet_with_frame_vectors`` gives every block the per-frame embedding instead.
- The last output frame is the input view (``with_input_view``).

The camera angles themselves come from ``sv3d_camera`` (torch-free, for the front-ends).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from diffusers import UNetSpatioTemporalConditionModel
from diffusers.models.embeddings import get_timestep_embedding

from videogen.families.sv3d_camera import model_angles, orbit_angles
from videogen.families.svd_conditioning import Conditioning, resolved
from videogen.families.svd_layout import VectorLayout
from videogen.request import Request
from videogen.sampling.guidance import triangle_guidance

#: SV3D's noise augmentation of the conditioning image, fixed by the sampling script.
SV3D_COND_AUG = 1e-5


def sv3d_conditioning(request: Request, layout: VectorLayout) -> Conditioning:
    """[cond_aug] for the whole video (SV3D_u), or [cond_aug, polar, azimuth] per frame (SV3D_p)."""
    guidance = triangle_guidance(
        resolved(request, "min_guidance"), resolved(request, "max_guidance"), resolved(request, "num_frames")
    )
    record: dict[str, object] = {"cond_aug": SV3D_COND_AUG, "guidance_schedule": "triangle"}
    if layout.kind == "sv3d_u":
        return Conditioning([[SV3D_COND_AUG]], SV3D_COND_AUG, guidance, record)
    elevations, azimuths = orbit_angles(
        request.num_frames, request.elevations, request.azimuths, request.camera_path
    )
    record |= {"elevations": elevations, "azimuths": azimuths, "camera_path": request.camera_path}
    rows = [
        [SV3D_COND_AUG, polar, azimuth]
        for polar, azimuth in zip(*model_angles(elevations, azimuths), strict=True)
    ]
    return Conditioning(rows, SV3D_COND_AUG, guidance, record)


def with_input_view(frames: np.ndarray, input_view: torch.Tensor) -> np.ndarray:
    """``frames`` (frames, H, W, 3) in [0, 1] with the last one replaced by ``input_view`` ((3, H, W)
    in [-1, 1], the prepared input image), as Stability's sampler does."""
    frames[-1] = ((input_view.float().cpu() + 1) / 2).permute(1, 2, 0).numpy()
    return frames


def embed_scalars(vectors: torch.Tensor, widths: Sequence[int]) -> torch.Tensor:
    """Embed column i of ``vectors`` (rows, k) sinusoidally at ``widths[i]`` (cos half first) and concatenate.

    This is sgm's ConcatTimestepEmbedderND per conditioning key; for equal widths it is what the stock
    UNet's ``add_time_proj`` computes.
    """
    columns = [
        get_timestep_embedding(vectors[:, i], width, flip_sin_to_cos=True, downscale_freq_shift=0)
        for i, width in enumerate(widths)
    ]
    return torch.cat(columns, dim=1)


@contextmanager
def _block_embedding(unet: UNetSpatioTemporalConditionModel, emb: torch.Tensor) -> Iterator[None]:
    """Hand ``emb`` to every down, mid and up block in place of the embedding the stock forward made."""

    def replace(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if "temb" not in kwargs:
            raise RuntimeError(f"{type(module).__name__} was not given temb by keyword; diffusers changed")
        return args, {**kwargs, "temb": emb}

    blocks = [*unet.down_blocks, unet.mid_block, *unet.up_blocks]
    handles = [block.register_forward_pre_hook(replace, with_kwargs=True) for block in blocks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def frame_embeddings(
    unet: UNetSpatioTemporalConditionModel, vectors: torch.Tensor, widths: Sequence[int]
) -> torch.Tensor:
    """The added embedding (frames, channels) of each frame's own vector (frames, k)."""
    embedded = embed_scalars(vectors, widths).to(unet.dtype)
    return unet.add_embedding(embedded)


def unet_with_frame_vectors(
    unet: UNetSpatioTemporalConditionModel,
    sample: torch.Tensor,
    timestep: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    vectors: torch.Tensor,
    widths: Sequence[int],
) -> torch.Tensor:
    """The UNet's prediction for ``sample`` (batch, frames, c, h, w) with one added vector per frame.

    The stock forward embeds one vector per video and repeats the sum of time and added embeddings
    over the frames. Here the same sum is made per frame (time embedding as the stock forward makes
    it, plus ``frame_embeddings``) and given to every block through forward pre-hooks; nothing else in
    the UNet reads it, so the stock forward runs unchanged around it. ``vectors`` (frames, k) serves
    every batch item: sgm gives the unconditional branch the same vector. The hooks live for this call
    only, so one UNet must not run two such calls at once (an engine generates one job at a time).
    """
    batch, frames = sample.shape[:2]
    timesteps = timestep.reshape(1).to(sample.device).expand(batch)
    time_emb = unet.time_embedding(unet.time_proj(timesteps).to(sample.dtype))
    added = frame_embeddings(unet, vectors, widths)
    emb = time_emb.repeat_interleave(frames, dim=0) + added.repeat(batch, 1)
    # The stock forward still embeds a vector of its own; any of the right width does, as it is replaced.
    base = unet.config.addition_time_embed_dim
    placeholder = sample.new_zeros(batch, unet.config.projection_class_embeddings_input_dim // base)
    with _block_embedding(unet, emb):
        return unet(
            sample, timestep, encoder_hidden_states=encoder_hidden_states, added_time_ids=placeholder
        ).sample
