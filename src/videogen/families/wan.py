"""The Wan family: Wan 2.1 and Wan 2.2 diffusion transformers, text, image and video to video.

The denoising loop is ours; diffusers supplies WanTransformer3DModel, AutoencoderKLWan and the
flow-matching schedulers, transformers the UMT5 text encoder (and Wan 2.1 I2V's CLIP image encoder).
With the same seed it reproduces diffusers' WanPipeline (Wan 2.1, Wan 2.2 TI2V-5B text to video with
``expand_timesteps``, Wan 2.2 A14B's two experts), WanImageToVideoPipeline (Wan 2.1 I2V and FLF2V,
Wan 2.2 I2V-A14B, TI2V-5B image to video) and WanVideoToVideoPipeline.

A folder's variant is read from model_index.json as the real repos write it: ``boundary_ratio``
(A14B: ``transformer`` runs the timesteps at or above boundary_ratio * num_train_timesteps,
``transformer_2`` the rest, each with its own guidance) and ``expand_timesteps`` (TI2V-5B: the
transformer gets one timestep per token). Latents live in the VAE's normalised space,
(latent - latents_mean) / latents_std, in float32; the transformer sees them cast to its dtype.

Image conditioning plugs into the loop through ``Conditioning``: channels concatenated after the
latents (Wan 2.1 I2V's mask and condition latents), image embeddings for the transformer's image
cross-attention, and latents held clean under a mask whose tokens run at timestep 0 (TI2V's first
frame). ``wan_conditioning`` makes them from the request's images (``image_conditioning``).
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
    WanTransformer3DModel,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from PIL import Image
from transformers import AutoTokenizer, CLIPVisionModel, PreTrainedTokenizerBase, UMT5EncoderModel

from videogen.errors import FieldError
from videogen.families.base import GeneratedVideo, Inputs
from videogen.families.lora import applied_loras
from videogen.families.transformer_cache import TransformerCache
from videogen.families.undecoded import DecodeFailed
from videogen.families.wan_conditioning import (
    ClipPreprocess,
    clip_image_embeddings,
    clip_pixels,
    condition_channels,
    first_frame_hold,
)
from videogen.families.wan_memory import (
    Tiling,
    decode_budget,
    decode_fitting,
    prepare_transformer_modules,
)
from videogen.request import Request
from videogen.sampling.frame_cross_attention import FrameText, frame_text
from videogen.sampling.noisy_seeding import start_timesteps
from videogen.sampling.progress import Reporter
from videogen.sampling.prompt_travel import blended, travelled_weights
from videogen.sampling.seeds import cpu_generator, cpu_randn
from videogen.speedups import DEFAULT_SPEEDUPS, Speedups

#: tokens of the prompt the text encoder reads; the rest are cut, shorter prompts padded (diffusers' default)
MAX_SEQUENCE_LENGTH = 512
WAN_SCHEDULERS = ("unipc", "euler")


@dataclass(frozen=True)
class Conditioning:
    """What the transformer gets besides the noisy latents and the prompt; empty for text to video.

    - ``extra_channels`` (1, c, F', h, w): concatenated after the latents on the channel axis at every
      step (Wan 2.1 I2V / Wan 2.2 I2V-A14B: the frame mask and the condition latents).
    - ``image_embeds`` (n, tokens, dim): the transformer's ``encoder_hidden_states_image`` (Wan 2.1 I2V's
      CLIP embeddings), the same for the conditional and unconditional calls.
    - ``keep`` (1, 1 or z, F', h, w) and ``clean`` (1, z, F', h, w): where ``keep`` is 0 the latents are
      ``clean`` in what the transformer sees and in the result, and (with ``expand_timesteps``) those
      tokens run at timestep 0 (Wan 2.2 TI2V-5B: the first frame's latent). Both or neither.
    """

    extra_channels: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None
    keep: torch.Tensor | None = None
    clean: torch.Tensor | None = None

    def held(self, latents: torch.Tensor) -> torch.Tensor:
        """``latents`` with the held parts replaced by ``clean`` (unchanged without a mask)."""
        if self.keep is None or self.clean is None:
            return latents
        return (1 - self.keep) * self.clean + self.keep * latents

    def model_input(self, latents: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """What the transformer denoises this step: the held latents, then any extra channels."""
        held = self.held(latents)
        if self.extra_channels is not None:
            held = torch.cat([held, self.extra_channels.to(held)], dim=1)
        return held.to(dtype)

    def token_timesteps(self, t: torch.Tensor, latents: torch.Tensor, patch: tuple[int, ...]) -> torch.Tensor:
        """One timestep per transformer token (1, tokens): ``t``, or 0 where the latents are held.

        Tokens run frame by frame, row by row; each covers a ``patch`` (frames, h, w) of latents.
        """
        grid = self.keep[0, 0] if self.keep is not None else latents.new_ones(latents.shape[2:])
        return (grid[:: patch[0], :: patch[1], :: patch[2]] * t).flatten()[None]


@dataclass(frozen=True)
class Expert:
    """The transformer that denoises a range of timesteps, with its guidance scale."""

    name: str  # "transformer" or "transformer_2", as in the folder
    model: WanTransformer3DModel
    guidance: float


class WanEngine:
    """Loaded Wan components on one device, ready to generate many videos."""

    family = "wan"

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: UMT5EncoderModel,
        transformer: WanTransformer3DModel,
        transformer_2: WanTransformer3DModel | None,
        vae: AutoencoderKLWan,
        scheduler_config: dict,
        pipeline_config: dict,
        device: torch.device,
        speedups: Speedups,
        image_encoder: CLIPVisionModel | None = None,
        clip_preprocess: ClipPreprocess | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.transformer = transformer
        self.transformer_2 = transformer_2
        self.vae = vae
        #: Wan 2.1 I2V / FLF2V's CLIP vision tower and its image processor settings; None elsewhere
        self.image_encoder = image_encoder
        self.clip_preprocess = clip_preprocess
        self.scheduler_config = scheduler_config
        self.boundary_ratio: float | None = pipeline_config.get("boundary_ratio")
        self.expand_timesteps = bool(pipeline_config.get("expand_timesteps", False))
        if (self.boundary_ratio is None) != (transformer_2 is None):
            raise ValueError(
                f"boundary_ratio: {self.boundary_ratio} with{'out' if transformer_2 is None else ''} "
                "transformer_2; a two-expert model needs both, a one-expert model neither"
            )
        self.device = device
        self.dtype = transformer.dtype
        self.speedups = speedups
        experts = [transformer, *([transformer_2] if transformer_2 else [])]
        #: where the UMT5 encoder runs: the device, or the CPU (``text_encoder_device``), off the accelerator
        self.text_encoder_device, self.applied = prepare_transformer_modules(
            text_encoder,
            [*([image_encoder] if image_encoder else []), *experts, vae],
            experts,
            device,
            speedups,
        )
        #: First Block Cache on the experts, set per video from ``request.cache_threshold``
        self.cache = TransformerCache([transformer, *([transformer_2] if transformer_2 else [])])

    @classmethod
    def load(
        cls,
        folder: Path,
        device: torch.device,
        dtype: torch.dtype,
        variant: str | None,
        speedups: Speedups = DEFAULT_SPEEDUPS,
    ) -> WanEngine:
        """Load every component of a WanPipeline-layout folder to run on ``device`` in ``dtype``."""
        folder = Path(folder)
        common = {"torch_dtype": dtype, "variant": variant}
        pipeline_config = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        tokenizer = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")
        text_encoder = UMT5EncoderModel.from_pretrained(folder, subfolder="text_encoder", **common)
        transformer = WanTransformer3DModel.from_pretrained(folder, subfolder="transformer", **common)
        transformer_2 = None
        if _lists_component(pipeline_config, "transformer_2"):
            transformer_2 = WanTransformer3DModel.from_pretrained(folder, subfolder="transformer_2", **common)
        vae = AutoencoderKLWan.from_pretrained(folder, subfolder="vae", **common)
        scheduler_config = dict(UniPCMultistepScheduler.load_config(folder, subfolder="scheduler"))
        image_encoder, clip_preprocess = None, None
        if _lists_component(pipeline_config, "image_encoder"):
            image_encoder = CLIPVisionModel.from_pretrained(folder, subfolder="image_encoder", **common)
            clip_preprocess = ClipPreprocess.from_folder(folder)
        return cls(
            tokenizer,
            text_encoder,
            transformer,
            transformer_2,
            vae,
            scheduler_config,
            pipeline_config,
            device,
            speedups,
            image_encoder,
            clip_preprocess,
        )

    def generate(
        self, request: Request, seeds: list[int], report: Reporter, inputs: Inputs | None = None
    ) -> list[GeneratedVideo]:
        """Generate one video per seed for a resolved request: from noise, or from ``inputs.video``;
        the request's LoRAs are on the experts for this call only."""
        loaded = applied_loras(request.lora or [], self.transformer, self.transformer_2)
        with loaded as loras, self.speedups.running():
            videos = self._generate(request, seeds, report, inputs or Inputs())
        for video in videos:
            video.record["lora"] = loras
        return videos

    def _generate(
        self, request: Request, seeds: list[int], report: Reporter, inputs: Inputs
    ) -> list[GeneratedVideo]:
        report("encode")
        started = time.perf_counter()
        conditioning = self.image_conditioning(request, inputs)
        prompt = self.encode_prompt(request.prompt or "")
        negative = self.encode_prompt(request.negative_prompt or "") if self.guided(request) else None
        travel = self.travelling_text(request, inputs, prompt)
        clip = self.encode_video(inputs.video) if inputs.video is not None else None
        encode_seconds = time.perf_counter() - started
        videos = []
        for index, seed in enumerate(seeds):
            start = time.perf_counter()
            generator = cpu_generator(seed)
            scheduler = self.scheduler(request)
            scheduler.set_timesteps(request.steps, device=self.device)
            if clip is None:
                latents, timesteps = self.noise_latents(request, generator), scheduler.timesteps
                scheduler.set_begin_index(0)
            else:
                latents, timesteps = self.noised_clip(clip, request, scheduler, generator)
            on_step = partial(report, "denoise", index)
            self.cache.configure(request.cache_threshold)
            latents, counts = self.denoise(
                latents, timesteps, scheduler, prompt, negative, request, on_step, conditioning, travel
            )
            denoised = time.perf_counter()
            report("decode", index)
            try:
                frames, tiling = self.decode(latents)
            except Exception as exc:
                undecoded = GeneratedVideo(
                    frames=np.zeros((0, 0, 0, 3), np.float32),
                    seed=seed,
                    record={"decode_failed": str(exc), "speedups": self.applied},
                    latents={"latents": latents.cpu()},
                )
                raise DecodeFailed(videos, undecoded, index, exc) from exc
            timings = {
                "encode_s": encode_seconds,
                "denoise_s": denoised - start,
                "decode_s": time.perf_counter() - denoised,
            }
            record = {
                "scheduler": request.scheduler,
                "flow_shift": self.flow_shift(request),
                "denoising_steps": len(timesteps),
                "guided_steps": sum(counts[e.name] for e in self.experts(request) if e.guidance > 1.0),
                "expert_steps": counts,
                "decode_chunk_size": frames.shape[0],
                "vae_tiling": tiling.record() if tiling else None,
                "speedups": self.applied,
                "image_conditioning": conditioning_kind(conditioning),
                **self.cache.record(),
            }
            kept = {"latents": latents.cpu()} if request.save_latents else None
            videos.append(
                GeneratedVideo(frames=frames, seed=seed, timings=timings, record=record, latents=kept)
            )
        return videos

    def guided(self, request: Request) -> bool:
        """Whether any step runs classifier-free guidance (a scale above 1 for some expert)."""
        return any(expert.guidance > 1.0 for expert in self.experts(request))

    def experts(self, request: Request) -> list[Expert]:
        """The transformers in the order they run: one, or A14B's high-noise then low-noise expert.

        Each expert guides when its own scale is above 1 (guidance_2 defaults to guidance). diffusers'
        WanPipeline decides from ``guidance`` alone: with guidance <= 1 it ignores guidance_2, and with
        guidance > 1 it mixes the low-noise expert's branches even at a guidance_2 <= 1.
        """
        first = Expert("transformer", self.transformer, request.guidance)
        if self.transformer_2 is None:
            return [first]
        second = request.guidance if request.guidance_2 is None else request.guidance_2
        return [first, Expert("transformer_2", self.transformer_2, second)]

    def expert_at(self, t: torch.Tensor, scheduler: SchedulerMixin, experts: list[Expert]) -> Expert:
        """A14B: the high-noise expert for t >= boundary_ratio * num_train_timesteps, else the other."""
        if self.boundary_ratio is None:
            return experts[0]
        boundary = self.boundary_ratio * scheduler.config.num_train_timesteps
        return experts[0] if t >= boundary else experts[1]

    def flow_shift(self, request: Request) -> float:
        """The request's flow shift, or the folder's scheduler's when the request leaves it out."""
        if request.flow_shift is not None:
            return request.flow_shift
        return float(self.scheduler_config.get("flow_shift", 1.0))

    def scheduler(self, request: Request) -> SchedulerMixin:
        """A fresh flow-matching scheduler: "unipc" (the folder's config) or "euler", with flow_shift."""
        shift = self.flow_shift(request)
        if request.scheduler == "unipc":
            return UniPCMultistepScheduler.from_config(self.scheduler_config, flow_shift=shift)
        if request.scheduler == "euler":
            steps = self.scheduler_config.get("num_train_timesteps", 1000)
            return FlowMatchEulerDiscreteScheduler(num_train_timesteps=steps, shift=shift)
        raise ValueError(f"scheduler: {request.scheduler!r}; Wan models take {' or '.join(WAN_SCHEDULERS)}")

    def travelling_text(self, request: Request, inputs: Inputs, prompt: torch.Tensor) -> dict[str, FrameText]:
        """Prompt travel (a chained segment whose prompt changes): for each expert, the text that the
        first latent frames read, ``inputs.previous_prompt`` blended into the prompt over the first
        ``inputs.travel_frames`` frames (``sampling.prompt_travel``); empty when nothing travels."""
        temporal = self.vae.config.scale_factor_temporal
        weights = travelled_weights(
            inputs.previous_prompt, request.prompt, request.num_frames, inputs.travel_frames, temporal
        )
        if not len(weights):
            return {}
        embeds = blended(self.encode_prompt(inputs.previous_prompt)[0], prompt[0], weights)
        _, _, _, height, width = self.latent_shape(request.num_frames, request.height, request.width)
        texts = {}
        for expert in self.experts(request):
            _, patch_h, patch_w = expert.model.config.patch_size
            context = expert.model.condition_embedder.text_embedder(embeds)
            texts[expert.name] = FrameText(context, None, (height // patch_h) * (width // patch_w))
        return texts

    def encode_prompt(self, text: str) -> torch.Tensor:
        """UMT5 embeddings (1, MAX_SEQUENCE_LENGTH, dim) of one prompt, in the transformer's dtype.

        The text is cleaned as diffusers cleans it (HTML entities, whitespace; ftfy when installed);
        positions after the prompt's own tokens (and its end token) are zeros, not the encoder's
        output for padding, as the Wan models were trained.
        """
        tokens = self.tokenizer(
            [clean_prompt(text)],
            padding="max_length",
            max_length=MAX_SEQUENCE_LENGTH,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        ids = tokens.input_ids.to(self.text_encoder_device)
        mask = tokens.attention_mask.to(self.text_encoder_device)
        hidden = self.text_encoder(ids, mask).last_hidden_state
        valid = int(mask.gt(0).sum())
        embeds = torch.zeros_like(hidden)
        embeds[:, :valid] = hidden[:, :valid]
        return embeds.to(self.device, self.dtype)

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int, int]:
        """(1, z, latent frames, h, w) of a video of ``num_frames`` frames of ``height`` x ``width``."""
        config = self.vae.config
        spatial, temporal = config.scale_factor_spatial, config.scale_factor_temporal
        return (1, config.z_dim, (num_frames - 1) // temporal + 1, height // spatial, width // spatial)

    def noise_latents(self, request: Request, generator: torch.Generator) -> torch.Tensor:
        """Pure-noise starting latents for text to video, float32."""
        shape = self.latent_shape(request.num_frames, request.height, request.width)
        return cpu_randn(shape, generator, self.device, torch.float32)

    def noised_clip(
        self, clip: torch.Tensor, request: Request, scheduler: SchedulerMixin, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Video to video: the clip's latents noised to the step ``strength`` selects, and the steps left.

        As WanVideoToVideoPipeline: the clip is encoded once (the posterior's mode, no random draw),
        then one noise tensor is drawn per video and mixed in by the scheduler.
        """
        timesteps = start_timesteps(scheduler, request.steps, request.strength)
        noise = cpu_randn(tuple(clip.shape), generator, self.device, torch.float32)
        if not len(timesteps):
            return clip, timesteps
        start = timesteps[:1]
        if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
            return scheduler.scale_noise(clip, start, noise), timesteps
        return scheduler.add_noise(clip, noise, start), timesteps

    def encode_video(self, video: np.ndarray) -> torch.Tensor:
        """Normalised float32 latents (1, z, F', h, w) of uint8 RGB frames (F, H, W, 3)."""
        pixels = torch.from_numpy(np.asarray(video)).permute(3, 0, 1, 2)[None].float() / 255 * 2 - 1
        return self.encode_pixels(pixels)

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised float32 latents (1, z, F', h, w) of pixels (1, 3, F, H, W) in [-1, 1]: the
        posterior's mode, so encoding draws no random numbers."""
        encoded = self.vae.encode(pixels.to(self.device, self.vae.dtype)).latent_dist.mode()
        return self.normalised(encoded.float())

    def image_conditioning(self, request: Request, inputs: Inputs) -> Conditioning:
        """What the model is conditioned on besides the prompt, from ``inputs.image`` and ``last_image``
        (see ``wan_conditioning``); the same for every seed.

        - A transformer wider than the latents (in_channels 36: Wan 2.1 I2V / FLF2V, Wan 2.2 I2V-A14B)
          needs an image: the frame mask and condition latents as extra channels, and, with an image
          encoder (Wan 2.1), the CLIP embeddings of the image (and of the last image for FLF2V).
        - ``expand_timesteps`` (Wan 2.2 TI2V-5B) with an image: the first latent frame held at it.
        - Otherwise nothing: text to video.
        """
        image, last = inputs.image, inputs.last_image
        if self.transformer.config.in_channels == self.vae.config.z_dim:
            if last is not None:
                allowed = "only Wan 2.1 FLF2V and Wan 2.2 I2V-A14B take one"
                raise FieldError("last_image", _described(last), allowed)
            if image is None:
                return Conditioning()
            if not self.expand_timesteps:
                allowed = "Wan text-to-video models take none; Wan 2.2 TI2V-5B and the Wan I2V models do"
                raise FieldError("image", _described(image), allowed)
            shape = self.latent_shape(request.num_frames, request.height, request.width)
            keep, clean = first_frame_hold(self.encode_pixels, image, shape)
            return Conditioning(keep=keep, clean=clean)
        if image is None:
            raise FieldError("image", None, "Wan image-to-video models start from an image; give one")
        channels = condition_channels(self.encode_pixels, image, last, request.num_frames)
        if self.image_encoder is None:
            return Conditioning(extra_channels=channels)
        identity = image if inputs.anchor is None else inputs.anchor
        return Conditioning(extra_channels=channels, image_embeds=self.image_embeddings(identity, last))

    def image_embeddings(self, image: Image.Image, last: Image.Image | None) -> torch.Tensor:
        """Wan 2.1's CLIP embeddings (images, tokens, dim) in the transformer's dtype: of the image, or,
        for FLF2V (whose transformer reads the two images' tokens as one sequence, ``pos_embed_seq_len``),
        of the image and the last image."""
        pairs = self.transformer.config.pos_embed_seq_len is not None
        if pairs != (last is not None):
            allowed = (
                "this first-and-last-frame model (Wan 2.1 FLF2V) ends on a given frame; give last_image"
                if pairs
                else "this model starts from a first image only; Wan 2.1 FLF2V and Wan 2.2 I2V-A14B take one"
            )
            raise FieldError("last_image", _described(last), allowed)
        assert self.image_encoder is not None and self.clip_preprocess is not None
        pixels = clip_pixels([image, *([last] if last is not None else [])], self.clip_preprocess)
        return clip_image_embeddings(self.image_encoder, pixels).to(self.device, self.dtype)

    def normalised(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE latents -> the space the transformer works in: (latents - mean) / std, per channel."""
        mean, std = self._latent_statistics(latents)
        return (latents - mean) * (1.0 / std)

    def denormalised(self, latents: torch.Tensor) -> torch.Tensor:
        """The inverse of ``normalised``: what the VAE decodes."""
        mean, std = self._latent_statistics(latents)
        return latents / (1.0 / std) + mean

    def _latent_statistics(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.vae.config
        mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1)
        std = torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1)
        return mean.to(latents), std.to(latents)

    def denoise(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        scheduler: SchedulerMixin,
        prompt: torch.Tensor,
        negative: torch.Tensor | None,
        request: Request,
        on_step: Callable[[int, int, torch.Tensor], None],
        conditioning: Conditioning,
        travel: dict[str, FrameText] | None = None,
    ) -> tuple[torch.Tensor, dict[str, int]]:
        """Run the sampler over ``timesteps``; return the final latents (1, z, F', h, w), float32, with
        any held parts restored, and how many steps each expert ran.

        Each step calls the expert for its timestep once with the prompt and, when that expert's
        guidance is above 1, once with the negative prompt (separate calls, each in its own cache
        context, as diffusers makes them), and mixes them: uncond + guidance * (cond - uncond).
        ``travel`` (per expert) is the text of the prompt call's first latent frames (prompt travel).
        """
        travel = travel or {}
        experts = self.experts(request)
        counts = {expert.name: 0 for expert in experts}
        with self.remembering_text(experts):
            for i, t in enumerate(timesteps):
                expert = self.expert_at(t, scheduler, experts)
                counts[expert.name] += 1
                model_input = conditioning.model_input(latents, expert.model.dtype)
                if self.expand_timesteps:
                    timestep = conditioning.token_timesteps(t, latents, expert.model.config.patch_size)
                else:
                    timestep = t.expand(latents.shape[0])
                call = partial(self.predict, expert.model, model_input, timestep, conditioning.image_embeds)
                velocity = call(prompt, "cond", travel.get(expert.name))
                if expert.guidance > 1.0 and negative is not None:
                    uncond = call(negative, "uncond")
                    velocity = uncond + expert.guidance * (velocity - uncond)
                latents = scheduler.step(velocity, t, latents, return_dict=False)[0]
                on_step(i + 1, len(timesteps), latents)
        return conditioning.held(latents), counts

    def remembering_text(self, experts: list[Expert]) -> contextlib.AbstractContextManager:
        """The experts' text and image projections computed once per video (``context_cache``)."""
        models = [expert.model for expert in experts]
        embedder = [model.condition_embedder for model in models]
        images = [e.image_embedder for e in embedder if e.image_embedder is not None]
        captions = [e.text_embedder for e in embedder] + images
        attentions = [block.attn2 for model in models for block in model.blocks]
        return self.speedups.remembering_text(self.device, attentions, captions)

    @staticmethod
    def predict(
        model: WanTransformer3DModel,
        model_input: torch.Tensor,
        timestep: torch.Tensor,
        image_embeds: torch.Tensor | None,
        context: torch.Tensor,
        branch: str,
        text: FrameText | None = None,
    ) -> torch.Tensor:
        """One transformer call, in the cache context ``branch`` ("cond" or "uncond") that diffusers'
        cache hooks (First Block Cache, MagCache, TaylorSeer) keep their state under; with ``text``,
        the first latent frames' cross-attention reads it (prompt travel)."""
        with model.cache_context(branch), frame_text([block.attn2 for block in model.blocks], text):
            return model(
                hidden_states=model_input,
                timestep=timestep,
                encoder_hidden_states=context,
                encoder_hidden_states_image=image_embeds,
                return_dict=False,
            )[0]

    def decode_saved(self, saved: dict[str, torch.Tensor], chunk: int | None) -> tuple[np.ndarray, int]:
        """Decode latents kept by ``save_latents``: frames (F, H, W, 3) and the frames decoded at once.

        The Wan VAE is causal in time and decodes a clip latent frame by latent frame with its own
        feature cache, so it always takes the whole clip: ``chunk`` is not used.
        """
        frames, _ = self.decode(saved["latents"])
        return frames, frames.shape[0]

    def decode(self, latents: torch.Tensor) -> tuple[np.ndarray, Tiling | None]:
        """VAE-decode normalised latents (1, z, F', h, w) to float frames (F, H, W, 3) in [0, 1], tiled
        where whole frames would not fit in free memory (``wan_memory``); also the tiling used."""
        latents = self.denormalised(latents.to(self.device, self.vae.dtype))
        video, tiling = decode_fitting(self.vae, latents, decode_budget(self.device))
        video = (video.float() / 2 + 0.5).clamp(0, 1)
        return video[0].permute(1, 2, 3, 0).cpu().numpy(), tiling


def clean_prompt(text: str) -> str:
    """The prompt as diffusers' Wan pipelines feed it to the tokenizer: mojibake fixed when ftfy is
    installed, HTML entities unescaped (twice), runs of whitespace made one space, ends stripped."""
    try:
        import ftfy
    except ImportError:
        pass
    else:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


def conditioning_kind(conditioning: Conditioning) -> str | None:
    """How a video was conditioned on images, for the record: None for text (and video) to video."""
    if conditioning.keep is not None:
        return "first frame latent"
    if conditioning.extra_channels is None:
        return None
    if conditioning.image_embeds is None:
        return "mask and condition latents"
    return "mask and condition latents, CLIP image embeddings"


def _described(image: Image.Image | None) -> str | None:
    """An image as an error names it: its size, not its pixels."""
    return None if image is None else f"{image.width}x{image.height} image"


def _lists_component(pipeline_config: dict, name: str) -> bool:
    """Whether model_index.json names a class for ``name`` (TI2V lists transformer_2 as [null, null])."""
    entry = pipeline_config.get(name)
    return isinstance(entry, list) and entry[-1] is not None
