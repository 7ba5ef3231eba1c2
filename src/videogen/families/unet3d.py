"""The UNet3D family: ModelScope text-to-video and its Zeroscope fine-tunes.

The denoising loop is ours; diffusers supplies the model classes and schedulers. With DDIM
and the same seed it reproduces diffusers' (deprecated) TextToVideoSDPipeline.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from transformers import CLIPTextModel, CLIPTokenizer

from videogen.families.base import GeneratedVideo, Inputs
from videogen.families.decoding import decode_in_chunks, fitting_chunk, vae_decoder
from videogen.request import Request
from videogen.sampling.deepcache import DeepCache
from videogen.sampling.guidance import guided_steps
from videogen.sampling.noisy_seeding import FramePin, seeding_noise, start_timesteps
from videogen.sampling.progress import Reporter
from videogen.sampling.prompt_travel import frame_embeddings, travelling
from videogen.sampling.schedulers import make_scheduler
from videogen.sampling.seeds import cpu_generator, cpu_randn
from videogen.speedups import DEFAULT_SPEEDUPS, Speedups, prepare_modules

log = logging.getLogger(__name__)
#: frames the VAE encodes at once (an input video, or a chained segment's continuation clip)
ENCODE_CHUNK = 4


class UNet3DEngine:
    """Loaded ModelScope-style components on one device, ready to generate many videos."""

    family = "unet3d"

    def __init__(
        self,
        tokenizer: CLIPTokenizer,
        text_encoder: CLIPTextModel,
        unet: UNet3DConditionModel,
        vae: AutoencoderKL,
        scheduler_config: dict,
        device: torch.device,
        speedups: Speedups,
    ) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.unet = unet
        self.vae = vae
        self.scheduler_config = scheduler_config
        self.vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        self.device = device
        self.dtype = unet.dtype
        self.speedups = speedups
        self.applied = prepare_modules([text_encoder, unet, vae], unet, device, speedups)

    @classmethod
    def load(
        cls,
        folder: Path,
        device: torch.device,
        dtype: torch.dtype,
        variant: str | None,
        speedups: Speedups = DEFAULT_SPEEDUPS,
    ) -> UNet3DEngine:
        """Load every component of a diffusers-layout folder to run on ``device`` in ``dtype``."""
        common = {"torch_dtype": dtype, "variant": variant}
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **common)
        unet = UNet3DConditionModel.from_pretrained(folder, subfolder="unet", **common)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", **common)
        scheduler_config = DDIMScheduler.load_config(folder, subfolder="scheduler")
        return cls(tokenizer, text_encoder, unet, vae, dict(scheduler_config), device, speedups)

    def generate(
        self, request: Request, seeds: list[int], report: Reporter, inputs: Inputs | None = None
    ) -> list[GeneratedVideo]:
        """Generate one video per seed for a resolved request, from noise or from an image/video."""
        with self.speedups.running():
            return self._generate(request, seeds, report, inputs or Inputs())

    def _generate(
        self, request: Request, seeds: list[int], report: Reporter, inputs: Inputs
    ) -> list[GeneratedVideo]:
        report("encode")
        started = time.perf_counter()
        guided = request.guidance > 1.0
        embeds = self.encode_prompt(request.prompt, request.negative_prompt if guided else None, guided)
        encode_seconds = time.perf_counter() - started
        videos = []
        for index, seed in enumerate(seeds):
            start = time.perf_counter()
            generator = cpu_generator(seed)
            scheduler = make_scheduler(request.scheduler, self.scheduler_config)
            scheduler.set_timesteps(request.steps, device=self.device)
            if inputs.image is not None or inputs.video is not None:
                latents, timesteps, pin = self.seed_latents(request, inputs, scheduler, generator)
            else:
                latents, timesteps, pin = (
                    self.noise_latents(request, scheduler, generator),
                    scheduler.timesteps,
                    None,
                )
            on_step = partial(report, "denoise", index)
            with self.prompt_travel(request, inputs, embeds):
                latents, cache = self.denoise(latents, timesteps, scheduler, embeds, request, on_step, pin)
            denoised = time.perf_counter()
            report("decode", index)
            frames, chunk_used = self.decode(latents, request.decode_chunk_size)
            timings = {
                "encode_s": encode_seconds,
                "denoise_s": denoised - start,
                "decode_s": time.perf_counter() - denoised,
            }
            record = {
                **cache.record(),
                "denoising_steps": len(timesteps),
                "guided_steps": guided_steps(len(timesteps), request.guidance_end) if guided else 0,
                "decode_chunk_size": chunk_used,
                "speedups": self.applied,
            }
            kept = {"latents": latents.cpu()} if request.save_latents else None
            videos.append(
                GeneratedVideo(frames=frames[0], seed=seed, timings=timings, record=record, latents=kept)
            )
        return videos

    def prompt_travel(
        self, request: Request, inputs: Inputs, embeds: torch.Tensor
    ) -> contextlib.AbstractContextManager:
        """Per-frame prompt embeddings from ``inputs.previous_prompt`` into the prompt (a chain's
        segment whose prompt changes); no change without one."""
        if inputs.previous_prompt is None or inputs.previous_prompt == request.prompt:
            return contextlib.nullcontext()
        previous = self.encode_prompt(inputs.previous_prompt, None, guided=False)[0]
        per_frame = frame_embeddings(previous, embeds[-1], request.num_frames, inputs.travel_frames)
        return travelling(self.unet, per_frame)

    def encode_prompt(self, prompt: str, negative_prompt: str | None, guided: bool) -> torch.Tensor:
        """CLIP text embeddings, with the negative (or empty) prompt first when guidance is on."""
        texts = [negative_prompt or "", prompt] if guided else [prompt]
        max_length = self.tokenizer.model_max_length
        ids = self.tokenizer(
            texts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
        )
        full = self.tokenizer(texts, padding="longest", return_tensors="pt").input_ids
        if full.shape[-1] > max_length:
            log.warning("the prompt is longer than CLIP's %d tokens; the rest is ignored", max_length)
        embeds = self.text_encoder(ids.input_ids.to(self.device))[0]
        return embeds.to(self.dtype)

    def latent_shape(self, request: Request) -> tuple[int, int, int, int, int]:
        """(batch, channels, frames, h, w) of one video's latents."""
        h, w = request.height // self.vae_scale, request.width // self.vae_scale
        return (1, self.unet.config.in_channels, request.num_frames, h, w)

    def noise_latents(self, request: Request, scheduler, generator: torch.Generator) -> torch.Tensor:
        """Pure-noise starting latents for text to video."""
        noise = cpu_randn(self.latent_shape(request), generator, self.device, self.dtype)
        return noise * scheduler.init_noise_sigma

    def seed_latents(
        self, request: Request, inputs: Inputs, scheduler, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, FramePin | None]:
        """Starting latents from an image or video, noised to the step ``strength`` selects.

        The random draws (VAE posterior sample, then the noise) follow diffusers'
        VideoToVideoSDPipeline, so ``--video`` with independent noise reproduces it.
        """
        if inputs.video is not None:
            clean = self.encode_frames(inputs.video, generator)
        else:
            clean = self.encode_frames(np.asarray(inputs.image)[None], generator)
            clean = clean.expand(request.num_frames, -1, -1, -1)
        timesteps = start_timesteps(scheduler, request.steps, request.strength)
        noise = seeding_noise(
            tuple(clean.shape), request.noise_mode, request.noise_mix, generator, self.device, self.dtype
        )
        noisy = scheduler.add_noise(clean, noise, timesteps[:1]) if len(timesteps) else clean
        latents = noisy.permute(1, 0, 2, 3)[None].contiguous()
        pin = FramePin(clean=clean[0], noise=noise[0]) if request.pin_first_frame else None
        return latents, timesteps, pin

    def encode_frames(self, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """VAE latents (frames, channels, h, w) of uint8 RGB frames, scaled for the UNet."""
        pixels = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 255 * 2 - 1
        # The VAE is per frame, so encoding a few frames at a time gives the same posterior with a
        # fraction of the activations; it is sampled once, as a whole, as diffusers does.
        parameters = [
            self.vae.encode(chunk.to(self.device, self.dtype)).latent_dist.parameters
            for chunk in pixels.split(ENCODE_CHUNK)
        ]
        posterior = DiagonalGaussianDistribution(torch.cat(parameters))
        return posterior.sample(generator) * self.vae.config.scaling_factor

    def denoise(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        scheduler,
        embeds: torch.Tensor,
        request: Request,
        on_step: Callable[[int, int, torch.Tensor], None],
        pin: FramePin | None = None,
    ) -> tuple[torch.Tensor, DeepCache]:
        """Run the sampler over ``timesteps``; return the final latents (1, 4, frames, h, w) and the
        feature cache, which counted the UNet evaluations.

        ``embeds`` holds [negative, prompt] when guided: the first ``guided_steps`` steps use both,
        the rest the prompt alone (``guidance_end``). Every ``cache_interval``-th step runs the
        whole UNet, the others its shallow path (DeepCache).
        """
        with_guidance = guided_steps(len(timesteps), request.guidance_end) if embeds.shape[0] == 2 else 0
        cache = DeepCache(self.unet, request.cache_interval)
        for i, t in enumerate(timesteps):
            guided = i < with_guidance
            model_input = torch.cat([latents] * 2) if guided else latents
            model_input = scheduler.scale_model_input(model_input, t)
            context = embeds if guided else embeds[-1:]
            with cache.step(i, len(model_input)):
                noise = self.unet(model_input, t, encoder_hidden_states=context, return_dict=False)[0]
            if guided:
                uncond, cond = noise.chunk(2)
                noise = uncond + request.guidance * (cond - uncond)
            latents = scheduler.step(noise, t, latents, return_dict=False)[0]
            if pin is not None:
                pin.apply(latents, scheduler, timesteps[i + 1] if i + 1 < len(timesteps) else None)
            on_step(i + 1, len(timesteps), latents)
        return latents, cache

    def decode_saved(self, saved: dict[str, torch.Tensor], chunk: int | None) -> tuple[np.ndarray, int]:
        """Decode latents kept by ``save_latents``: frames (F, H, W, 3) and the chunk size used."""
        frames, chunk = self.decode(saved["latents"], chunk)
        return frames[0], chunk

    def decode(self, latents: torch.Tensor, chunk: int | None) -> tuple[np.ndarray, int]:
        """VAE-decode latents ``chunk`` frames at a time (None: as many as fit in free memory).

        Returns float frames (batch, F, H, W, 3) and the chunk size that fitted in memory.
        """
        latents = latents.to(self.device, self.dtype)
        batch, channels, num_frames, height, width = latents.shape
        flat = latents.permute(0, 2, 1, 3, 4).reshape(batch * num_frames, channels, height, width)
        flat = flat / self.vae.config.scaling_factor
        if chunk is None:
            side = self.vae_scale
            chunk = fitting_chunk(self.vae, len(flat), height * side, width * side, self.dtype, self.device)
        images, chunk = decode_in_chunks(vae_decoder(self.vae), flat, chunk)
        images = (images.float() / 2 + 0.5).clamp(0, 1)
        video = images.reshape(batch, num_frames, *images.shape[1:]).permute(0, 1, 3, 4, 2)
        return video.cpu().numpy(), chunk
