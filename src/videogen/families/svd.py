"""The SVD family: Stable Video Diffusion image-to-video, and SV3D orbits around an object.

The denoising loop is ours; diffusers supplies the model classes and the Euler scheduler. With the
same seed it reproduces diffusers' StableVideoDiffusionPipeline. SV3D is not in diffusers; it follows
Stability's generative-models sampler (scripts/sampling/simple_video_sample.py, configs sv3d_u.yaml and
sv3d_p.yaml): the same UNet with another added conditioning vector, triangle guidance over the frames,
cond_aug fixed to 1e-5 and the last frame replaced by the input view.

A folder's model is told apart by its UNet config alone (``vector_layout``); model_index.json says
StableVideoDiffusionPipeline for all three. SV3D's public checkpoints decode with a per-frame image
decoder, so the VAE may be an AutoencoderKL as well as SVD's AutoencoderKLTemporalDecoder.

This module is the engine (load, encode, denoise, decode); what each model is conditioned on is in
``svd_conditioning`` and ``sv3d_conditioning``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLTemporalDecoder,
    EulerDiscreteScheduler,
    UNetSpatioTemporalConditionModel,
)
from transformers import CLIPVisionModelWithProjection
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from videogen.errors import FieldError
from videogen.families.base import GeneratedVideo, Inputs
from videogen.families.decoding import decode_in_chunks, fitting_chunk, vae_class, vae_decoder
from videogen.families.sv3d_conditioning import sv3d_conditioning, unet_with_frame_vectors, with_input_view
from videogen.families.svd_conditioning import (
    image_to_tensor,
    noise_augmented,
    resize_antialiased,
    resolved,
    svd_conditioning,
)
from videogen.families.svd_layout import vector_layout
from videogen.request import Request
from videogen.sampling.deepcache import DeepCache
from videogen.sampling.guidance import guided_steps
from videogen.sampling.progress import Reporter
from videogen.sampling.schedulers import make_scheduler
from videogen.sampling.seeds import cpu_generator, cpu_randn
from videogen.speedups import DEFAULT_SPEEDUPS, Speedups, prepare_modules

#: Frames the VAE decodes at once when the request leaves decode_chunk_size out and memory allows:
#: Stability's decoding_t. The temporal decoder mixes the frames of a chunk, so the chunk is part of
#: the result; a smaller one is taken (and said) only when 14 frames would not fit in free memory.
DEFAULT_DECODE_CHUNK = 14
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """A request's conditioning, worked out (and validated) before any model runs."""

    vectors: torch.Tensor  # (1, k) for the whole video, or (frames, k) when the layout is per frame
    guidance: torch.Tensor  # (frames,)
    guided: bool  # False when guidance is 1 everywhere: the conditional prediction alone, one branch
    noise_aug: float
    decode_chunk_size: int | None  # None: the most that fits, up to DEFAULT_DECODE_CHUNK
    record: dict[str, object]


class SVDEngine:
    """Loaded SVD or SV3D components on one device, ready to animate many images."""

    family = "svd"

    def __init__(
        self,
        image_encoder: CLIPVisionModelWithProjection,
        clip_mean: Sequence[float],
        clip_std: Sequence[float],
        unet: UNetSpatioTemporalConditionModel,
        vae: AutoencoderKL | AutoencoderKLTemporalDecoder,
        scheduler_config: dict,
        device: torch.device,
        speedups: Speedups,
    ) -> None:
        self.image_encoder = image_encoder
        self.clip_mean = torch.tensor(clip_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.clip_std = torch.tensor(clip_std, dtype=torch.float32).view(1, 3, 1, 1)
        self.unet = unet
        self.vae = vae
        self.scheduler_config = scheduler_config
        self.layout = vector_layout(unet.config)
        self.vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        self.device = device
        self.dtype = unet.dtype
        self.speedups = speedups
        self.applied = prepare_modules([image_encoder, unet, vae], unet, device, speedups)

    @classmethod
    def load(
        cls,
        folder: Path,
        device: torch.device,
        dtype: torch.dtype,
        variant: str | None,
        speedups: Speedups = DEFAULT_SPEEDUPS,
    ) -> SVDEngine:
        """Load every component of an SVD-layout folder to run on ``device`` in ``dtype``."""
        folder = Path(folder)
        common = {"torch_dtype": dtype, "variant": variant}
        image_encoder = CLIPVisionModelWithProjection.from_pretrained(
            folder, subfolder="image_encoder", **common
        )
        unet = UNetSpatioTemporalConditionModel.from_pretrained(folder, subfolder="unet", **common)
        vae = vae_class(folder).from_pretrained(folder, subfolder="vae", **common)
        scheduler_config = EulerDiscreteScheduler.load_config(folder, subfolder="scheduler")
        mean, std = _clip_normalisation(folder)
        return cls(image_encoder, mean, std, unet, vae, dict(scheduler_config), device, speedups)

    def generate(
        self, request: Request, seeds: list[int], report: Reporter, inputs: Inputs
    ) -> list[GeneratedVideo]:
        """Animate ``inputs.image`` (RGB, already request.width x request.height) once per seed.

        ``request.cond_fps`` is the frame rate the model is conditioned on, the ``fps_id`` of Stability's
        sampler. diffusers' pipeline takes ``fps`` and subtracts one, so cond_fps = diffusers' fps - 1.
        Each video draws, from a CPU generator seeded with its seed, first the noise that augments the
        conditioning image, then the initial latents: the order of diffusers' pipeline, so both agree.
        """
        with self.speedups.running():
            return self._generate(request, seeds, report, inputs)

    def _generate(
        self, request: Request, seeds: list[int], report: Reporter, inputs: Inputs
    ) -> list[GeneratedVideo]:
        plan = self.plan(request)
        pixels = self._input_pixels(request, inputs)
        report("encode")
        started = time.perf_counter()
        identity = pixels if inputs.anchor is None else image_to_tensor(inputs.anchor)
        embeds = self.encode_image(identity, plan.guided)
        clip_seconds = time.perf_counter() - started
        videos = []
        for index, seed in enumerate(seeds):
            start = time.perf_counter()
            generator = cpu_generator(seed)
            image_latents = self.encode_latents(pixels, plan, request.num_frames, generator)
            encoded = time.perf_counter()
            latents, cache = self.denoise(
                request,
                plan,
                embeds,
                image_latents,
                generator,
                lambda s, n, x, i=index: report("denoise", i, s, n, x),
            )
            denoised = time.perf_counter()
            report("decode", index)
            input_view = pixels[0] if self.layout.kind != "svd" else None
            frames, chunk_used = self.decode(latents, plan.decode_chunk_size, input_view)
            timings = {
                "encode_s": clip_seconds + encoded - start,
                "denoise_s": denoised - encoded,
                "decode_s": time.perf_counter() - denoised,
            }
            record = {**plan.record, **cache.record(), "decode_chunk_size": chunk_used}
            kept = None
            if request.save_latents:
                kept = {"latents": latents.cpu()} | ({} if input_view is None else {"input_view": input_view})
            videos.append(
                GeneratedVideo(frames=frames, seed=seed, timings=timings, record=record, latents=kept)
            )
        return videos

    def plan(self, request: Request) -> Plan:
        """Work out the (resolved) request's conditioning vector and guidance for this model."""
        if self.layout.kind == "svd":
            conditioning = svd_conditioning(request)
        else:
            conditioning = sv3d_conditioning(request, self.layout)
        guided = bool((conditioning.guidance != 1).any())
        steps = resolved(request, "steps")
        record = conditioning.record | {
            "variant": self.layout.kind,
            "scheduler": "euler",
            "min_guidance": request.min_guidance,
            "max_guidance": request.max_guidance,
            "guided": guided,
            "guided_steps": guided_steps(steps, resolved(request, "guidance_end")) if guided else 0,
            "speedups": self.applied,
        }
        vectors = torch.tensor(conditioning.rows, dtype=torch.float32)
        return Plan(
            vectors, conditioning.guidance, guided, conditioning.noise_aug, request.decode_chunk_size, record
        )

    def _input_pixels(self, request: Request, inputs: Inputs) -> torch.Tensor:
        if inputs.image is None:
            raise FieldError("image", request.image, f"{request.model} animates an image; give image=PATH")
        size = (request.width, request.height)
        if inputs.image.size != size:
            raise ValueError(
                f"the input image is {inputs.image.size}, not the request's {size}; resize it first"
            )
        return image_to_tensor(inputs.image)

    def encode_image(self, pixels: torch.Tensor, guided: bool) -> torch.Tensor:
        """CLIP image embedding (batch, 1, dim), zeros first for the unconditional branch when guided."""
        side = self.image_encoder.config.image_size
        clip_input = resize_antialiased(pixels, (side, side))
        clip_input = ((clip_input + 1) / 2 - self.clip_mean) / self.clip_std
        embeds = self.image_encoder(clip_input.to(self.device, self.dtype)).image_embeds[:, None]
        return torch.cat([torch.zeros_like(embeds), embeds]) if guided else embeds

    def encode_latents(
        self, pixels: torch.Tensor, plan: Plan, num_frames: int, generator: torch.Generator
    ) -> torch.Tensor:
        """The noise-augmented image's VAE latent (mode, unscaled), repeated over (batch, frames, ...)."""
        latent = self._vae_encode(noise_augmented(pixels, plan.noise_aug, generator).to(self.device))
        latents = latent.to(self.dtype)[:, None].repeat(1, num_frames, 1, 1, 1)
        return torch.cat([torch.zeros_like(latents), latents]) if plan.guided else latents

    def _vae_encode(self, images: torch.Tensor) -> torch.Tensor:
        """Encode in fp32 when the VAE is fp16 and asks for it (force_upcast), as diffusers does."""
        upcast = self.vae.dtype == torch.float16 and self.vae.config.force_upcast
        if upcast:
            self.vae.to(torch.float32)
        try:
            return self.vae.encode(images.to(self.vae.dtype)).latent_dist.mode()
        finally:
            if upcast:
                self.vae.to(torch.float16)

    def denoise(
        self,
        request: Request,
        plan: Plan,
        embeds: torch.Tensor,
        image_latents: torch.Tensor,
        generator: torch.Generator,
        on_step: Callable[[int, int, torch.Tensor], None],
    ) -> tuple[torch.Tensor, DeepCache]:
        """Run Euler from pure noise; return the final latents (1, frames, 4, h, w) and the feature
        cache, which counted the UNet evaluations.

        When guided, ``embeds`` and ``image_latents`` hold [unconditional, conditional]; steps after
        the first ``guided_steps`` use the conditional half alone (``guidance_end``). Every
        ``cache_interval``-th step runs the whole UNet, the others its shallow path (DeepCache).
        """
        scheduler = make_scheduler("euler", self.scheduler_config)
        scheduler.set_timesteps(request.steps, device=self.device)
        shape = (
            1,
            request.num_frames,
            self.vae.config.latent_channels,
            request.height // self.vae_scale,
            request.width // self.vae_scale,
        )
        latents = cpu_randn(shape, generator, self.device, self.dtype) * scheduler.init_noise_sigma
        scale = plan.guidance.to(self.device, self.dtype).view(1, -1, 1, 1, 1)
        vectors = plan.vectors.to(self.device)
        timesteps = scheduler.timesteps
        with_guidance = guided_steps(len(timesteps), request.guidance_end) if plan.guided else 0
        cache = DeepCache(self.unet, resolved(request, "cache_interval"))
        for i, t in enumerate(timesteps):
            guided = i < with_guidance
            model_input = torch.cat([latents] * 2) if guided else latents
            model_input = scheduler.scale_model_input(model_input, t)
            halved = plan.guided and not guided  # guidance is over: the conditional half alone
            conditioning = image_latents[1:] if halved else image_latents
            model_input = torch.cat([model_input, conditioning], dim=2)
            context = embeds[1:] if halved else embeds
            with cache.step(i, len(model_input)):
                prediction = self.predict(model_input, t, context, vectors)
            if guided:
                uncond, cond = prediction.chunk(2)
                prediction = uncond + scale * (cond - uncond)
            latents = scheduler.step(prediction, t, latents, return_dict=False)[0]
            on_step(i + 1, len(timesteps), latents.transpose(1, 2))  # as (1, 4, frames, h, w)
        return latents, cache

    def predict(
        self, model_input: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, vectors: torch.Tensor
    ) -> torch.Tensor:
        """One UNet call: the stock forward for one vector per video, the per-frame path for SV3D_p."""
        if self.layout.per_frame:
            return unet_with_frame_vectors(self.unet, model_input, t, embeds, vectors, self.layout.widths)
        added = vectors.to(self.dtype).repeat(len(model_input), 1)
        return self.unet(model_input, t, encoder_hidden_states=embeds, added_time_ids=added).sample

    def decode_saved(self, saved: dict[str, torch.Tensor], chunk: int | None) -> tuple[np.ndarray, int]:
        """Decode latents kept by ``save_latents``: frames (F, H, W, 3) and the chunk size used."""
        return self.decode(saved["latents"], chunk, saved.get("input_view"))

    def decode(
        self, latents: torch.Tensor, chunk: int | None, input_view: torch.Tensor | None = None
    ) -> tuple[np.ndarray, int]:
        """VAE-decode ``chunk`` frames at a time; returns float frames (frames, H, W, 3) in [0, 1]
        and the chunk size that fitted in memory.

        The temporal decoder mixes the frames of one chunk, so the chunking is part of the result:
        None takes DEFAULT_DECODE_CHUNK, or fewer (with a warning) when that would not fit. SV3D's
        last frame becomes ``input_view`` (the prepared input, (3, H, W) in [-1, 1]).
        """
        flat = latents[0].to(self.device, self.dtype) / self.vae.config.scaling_factor
        temporal = isinstance(self.vae, AutoencoderKLTemporalDecoder)
        if chunk is None:
            height, width = (side * self.vae_scale for side in flat.shape[-2:])
            cap = min(DEFAULT_DECODE_CHUNK, len(flat))
            chunk = fitting_chunk(self.vae, len(flat), height, width, self.dtype, self.device, cap=cap)
            if chunk < cap and temporal:
                log.warning(
                    "decode_chunk_size %d (not %d) to fit in free memory; the temporal decoder's result "
                    "depends on it: pass --decode-chunk-size to fix it",
                    chunk,
                    cap,
                )
        images, chunk = decode_in_chunks(vae_decoder(self.vae), flat, chunk)
        images = (images.float() / 2 + 0.5).clamp(0, 1)
        frames = images.permute(0, 2, 3, 1).cpu().numpy()
        if input_view is not None:
            frames = with_input_view(frames, input_view)
        return frames, chunk


def _clip_normalisation(folder: Path) -> tuple[list[float], list[float]]:
    """The image encoder's normalisation from feature_extractor/preprocessor_config.json.

    Read directly: SVD hands CLIP an already resized tensor, so only mean and std are used, and the
    image processor class would need torchvision for nothing else.
    """
    path = folder / "feature_extractor" / "preprocessor_config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    return config.get("image_mean", OPENAI_CLIP_MEAN), config.get("image_std", OPENAI_CLIP_STD)
