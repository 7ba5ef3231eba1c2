"""The LTX-Video family: text, image, keyframes and video to video on one diffusion transformer.

The denoising loop is ours; diffusers supplies LTXVideoTransformer3DModel, AutoencoderKLLTXVideo and
FlowMatchEulerDiscreteScheduler, transformers the T5 encoder. With the same seed it reproduces
diffusers' pipelines, each on the inputs it takes:

- text alone: LTXPipeline (sigmas 1 -> 1/steps shifted by the sequence length, ``mu``);
- an image alone: LTXImageToVideoPipeline (the first latent frame held at the image's latents, its
  tokens at timestep 0);
- keyframes, a video (with ``strength``), or a custom schedule (``timesteps``): LTXConditionPipeline
  (the linear-quadratic schedule, tokens placed by coordinates, each held by its strength; see
  ``ltx_conditioning``). An image given with these is a keyframe at frame 0 of strength 1.

The two recipes differ where diffusers' pipelines differ: LTXConditionPipeline's T5 reads the
prompt's attention mask and LTXPipeline's does not, the grid pipelines step every token at the step's
sigma while LTXConditionPipeline steps each at its own timestep. Latents live in the VAE's normalised
space, (latent - mean) * scaling_factor / std, as float32 tokens (``ltx_conditioning.Layout``).

The VAEs of LTX-Video 0.9.1 and later decode at a timestep: the latents are mixed with
``decode_noise_scale`` of fresh noise and the decoder is told ``decode_timestep``. That noise is drawn
after denoising and kept with saved latents, so ``decode_saved`` decodes the same frames.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXVideoTransformer3DModel
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase, T5EncoderModel

from videogen.errors import FieldError
from videogen.families.base import GeneratedVideo, Inputs, Keyframe
from videogen.families.ltx_conditioning import (
    EncodedKeyframe,
    Layout,
    Tokens,
    first_frame_tokens,
    keyframe_tokens,
    linear_quadratic_sigmas,
    pixels,
    renoised_held,
    sequence_shift,
    trimmed_frames,
)
from videogen.families.ltx_memory import decode_latents
from videogen.families.transformer_cache import TransformerCache, ltx_tail
from videogen.families.undecoded import DecodeFailed
from videogen.families.wan_memory import Tiling, prepare_transformer_modules
from videogen.request import Request
from videogen.sampling.frame_cross_attention import FrameText, frame_text
from videogen.sampling.noisy_seeding import start_timesteps
from videogen.sampling.progress import Reporter
from videogen.sampling.prompt_travel import blended, travelled_weights
from videogen.sampling.seeds import cpu_generator, cpu_randn
from videogen.speedups import DEFAULT_SPEEDUPS, Speedups

#: tokens of the prompt T5 reads (LTXConditionPipeline's default; LTXPipeline's is 128)
MAX_SEQUENCE_LENGTH = 256
#: LTXConditionPipeline's default noise on fully held keyframe tokens
DEFAULT_IMAGE_COND_NOISE_SCALE = 0.15
#: the diffusers pipeline each recipe reproduces, for the record
GRID, CONDITIONS = "grid", "conditions"


@dataclass(frozen=True)
class Prompt:
    """T5 embeddings (1, MAX_SEQUENCE_LENGTH, dim) in the transformer's dtype and their token mask."""

    embeds: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class Plan:
    """What every video of one request shares: the recipe, the encoded inputs and the latent shape."""

    recipe: str  # GRID or CONDITIONS
    shape: tuple[int, int, int, int, int]  # (1, c, latent frames, h, w)
    image: DiagonalGaussianDistribution | None = None  # the image's VAE posterior (GRID with an image)
    clip: torch.Tensor | None = None  # normalised clip latents (video to video)
    keyframes: tuple[EncodedKeyframe, ...] = ()

    @property
    def pipeline(self) -> str:
        if self.recipe == CONDITIONS:
            return "LTXConditionPipeline"
        return "LTXPipeline" if self.image is None else "LTXImageToVideoPipeline"


class LTXEngine:
    """Loaded LTX-Video components on one device, ready to generate many videos."""

    family = "ltx"

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: T5EncoderModel,
        transformer: LTXVideoTransformer3DModel,
        vae: AutoencoderKLLTXVideo,
        scheduler_config: dict,
        device: torch.device,
        speedups: Speedups,
    ) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.transformer = transformer
        self.vae = vae
        self.scheduler_config = scheduler_config
        self.device = device
        self.dtype = transformer.dtype
        self.speedups = speedups
        self.layout = Layout(
            transformer.config.patch_size,
            transformer.config.patch_size_t,
            vae.spatial_compression_ratio,
            vae.temporal_compression_ratio,
        )
        self.text_encoder_device, self.applied = prepare_transformer_modules(
            text_encoder, [transformer, vae], [transformer], device, speedups
        )
        #: First Block Cache on the transformer, set per video from ``request.cache_threshold``
        self.cache = TransformerCache([transformer], tail=ltx_tail)

    @classmethod
    def load(
        cls,
        folder: Path,
        device: torch.device,
        dtype: torch.dtype,
        variant: str | None,
        speedups: Speedups = DEFAULT_SPEEDUPS,
    ) -> LTXEngine:
        """Load every component of an LTXPipeline / LTXConditionPipeline-layout folder."""
        folder = Path(folder)
        common = {"torch_dtype": dtype, "variant": variant}
        tokenizer = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")
        text_encoder = T5EncoderModel.from_pretrained(folder, subfolder="text_encoder", **common)
        transformer = LTXVideoTransformer3DModel.from_pretrained(folder, subfolder="transformer", **common)
        vae = AutoencoderKLLTXVideo.from_pretrained(folder, subfolder="vae", **common)
        config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
        return cls(tokenizer, text_encoder, transformer, vae, config, device, speedups)

    def generate(
        self, request: Request, seeds: list[int], report: Reporter, inputs: Inputs | None = None
    ) -> list[GeneratedVideo]:
        """Generate one video per seed for a resolved request, from noise or the inputs' image,
        keyframes or video."""
        with self.speedups.running():
            return self._generate(request, seeds, report, inputs or Inputs())

    def _generate(
        self, request: Request, seeds: list[int], report: Reporter, inputs: Inputs
    ) -> list[GeneratedVideo]:
        report("encode")
        started = time.perf_counter()
        plan = self.plan(request, inputs)
        masked = plan.recipe == CONDITIONS
        prompt = self.encode_prompt(request.prompt or "", masked)
        negative = self.encode_prompt(request.negative_prompt or "", masked) if request.guidance > 1 else None
        travel = self.travelling_text(request, inputs, prompt, plan, row=0 if negative is None else 1)
        encode_seconds = time.perf_counter() - started
        videos: list[GeneratedVideo] = []
        for index, seed in enumerate(seeds):
            start = time.perf_counter()
            generator = cpu_generator(seed)
            scheduler = FlowMatchEulerDiscreteScheduler.from_config(self.scheduler_config)
            timesteps = self.schedule(scheduler, request, plan)
            tokens, timesteps = self.start(plan, request, scheduler, timesteps, generator)
            self.cache.configure(request.cache_threshold)
            on_step = partial(report, "denoise", index)
            latents = self.denoise(
                tokens, timesteps, scheduler, prompt, negative, request, plan, generator, on_step, travel
            )
            saved = self.decode_inputs(latents, request, generator)
            denoised = time.perf_counter()
            report("decode", index)
            try:
                frames, tiling = self.decode(saved)
            except Exception as exc:
                undecoded = GeneratedVideo(
                    frames=np.zeros((0, 0, 0, 3), np.float32),
                    seed=seed,
                    record={"decode_failed": str(exc), "speedups": self.applied},
                    latents=saved,
                )
                raise DecodeFailed(videos, undecoded, index, exc) from exc
            timings = {
                "encode_s": encode_seconds,
                "denoise_s": denoised - start,
                "decode_s": time.perf_counter() - denoised,
            }
            record = {
                "scheduler": "flow_match_euler",
                "pipeline": plan.pipeline,
                "timesteps": [round(float(t), 4) for t in timesteps],
                "denoising_steps": len(timesteps),
                "guided_steps": len(timesteps) if negative is not None else 0,
                "keyframes": len(plan.keyframes),
                "decode_timestep": float(saved["decode_timestep"]) if "decode_timestep" in saved else None,
                "vae_tiling": tiling.record() if tiling else None,
                "speedups": self.applied,
                **self.cache.record(),
            }
            kept = saved if request.save_latents else None
            videos.append(
                GeneratedVideo(frames=frames, seed=seed, timings=timings, record=record, latents=kept)
            )
        return videos

    # -- what the request asks for --------------------------------------------------------------

    def plan(self, request: Request, inputs: Inputs) -> Plan:
        """The recipe for these inputs and everything the VAE encodes once for all seeds."""
        spatial, temporal = self.layout.spatial, self.layout.temporal
        for name, size in (("height", request.height), ("width", request.width)):
            if size % spatial:
                raise FieldError(name, size, f"LTX-Video takes multiples of {spatial} pixels")
        shape = (
            1,
            self.transformer.config.in_channels,
            (request.num_frames - 1) // temporal + 1,
            request.height // spatial,
            request.width // spatial,
        )
        keyframes = list(inputs.keyframes)
        conditioned = bool(keyframes) or inputs.video is not None or request.timesteps is not None
        if not conditioned:
            image = None if inputs.image is None else self.posterior(pixels(np.asarray(inputs.image)[None]))
            return Plan(GRID, shape, image=image)
        if inputs.image is not None:
            keyframes.insert(0, Keyframe(np.asarray(inputs.image)[None], 0, 1.0))
        encoded = tuple(self.encode_keyframe(keyframe, request.num_frames) for keyframe in keyframes)
        clip = None if inputs.video is None else self.encode_clip(inputs.video, request)
        return Plan(CONDITIONS, shape, clip=clip, keyframes=encoded)

    def encode_keyframe(self, keyframe: Keyframe, num_frames: int) -> EncodedKeyframe:
        frames = trimmed_frames(keyframe, num_frames, self.layout.temporal)
        posterior = self.posterior(pixels(frames))
        return EncodedKeyframe(posterior, len(frames), keyframe.frame_index, keyframe.strength)

    def encode_clip(self, video: np.ndarray, request: Request) -> torch.Tensor:
        """Video to video: the first ``num_frames`` frames' normalised latents (the posterior's mode,
        no random draw), which the schedule's first sigma mixes with noise."""
        if request.strength is None:
            raise FieldError("strength", None, "video to video needs a strength in (0, 1]")
        if len(video) < request.num_frames:
            raise FieldError("video", f"{len(video)} frames", f"at least num_frames ({request.num_frames})")
        posterior = self.posterior(pixels(video[: request.num_frames]))
        return self.normalised(posterior.mode().float())

    def posterior(self, pixels: torch.Tensor) -> DiagonalGaussianDistribution:
        """The VAE's posterior of pixels (1, 3, n, H, W) in [-1, 1]."""
        return self.vae.encode(pixels.to(self.device, self.vae.dtype)).latent_dist

    def encode_prompt(self, text: str, masked: bool) -> Prompt:
        """T5 embeddings of one prompt, padded to MAX_SEQUENCE_LENGTH; the transformer masks the padding.

        ``masked``: T5 itself reads the mask (LTXConditionPipeline); LTXPipeline and
        LTXImageToVideoPipeline let T5 attend to the padding too, which changes the prompt's embeddings.
        """
        tokens = self.tokenizer(
            [text],
            padding="max_length",
            max_length=MAX_SEQUENCE_LENGTH,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        ids = tokens.input_ids.to(self.text_encoder_device)
        mask = tokens.attention_mask.bool().to(self.text_encoder_device)
        hidden = self.text_encoder(ids, attention_mask=mask if masked else None)[0]
        return Prompt(hidden.to(self.device, self.dtype), mask.to(self.device))

    def travelling_text(
        self, request: Request, inputs: Inputs, prompt: Prompt, plan: Plan, row: int
    ) -> FrameText | None:
        """Prompt travel (a chained segment whose prompt changes): the text that the first latent
        frames of batch row ``row`` read, ``inputs.previous_prompt`` blended into the prompt over the
        first ``inputs.travel_frames`` frames (``sampling.prompt_travel``); None when nothing travels.

        A blended frame sees the tokens of either prompt (the union of their masks); the first latent
        frame, all the previous prompt, sees that prompt's tokens alone.
        """
        weights = travelled_weights(
            inputs.previous_prompt,
            request.prompt,
            request.num_frames,
            inputs.travel_frames,
            self.layout.temporal,
        )
        if not len(weights):
            return None
        previous = self.encode_prompt(inputs.previous_prompt, plan.recipe == CONDITIONS)
        embeds = blended(previous.embeds[0], prompt.embeds[0], weights)
        either = previous.mask[0] | prompt.mask[0]
        masks = torch.stack([previous.mask[0] if w == 0 else either for w in weights])
        bias = ((1 - masks.to(self.dtype)) * -10000.0).unsqueeze(1)  # as the transformer makes its own
        _, _, _, height, width = plan.shape
        per_frame = (height // self.layout.patch) * (width // self.layout.patch)
        return FrameText(self.transformer.caption_projection(embeds), bias, per_frame, row=row)

    def normalised(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE latents (1, c, f, h, w) -> the transformer's space: (latents - mean) * scaling / std."""
        mean, std = self._statistics(latents)
        return (latents - mean) * self.vae.config.scaling_factor / std

    def denormalised(self, latents: torch.Tensor) -> torch.Tensor:
        """The inverse of ``normalised``: what the VAE decodes."""
        mean, std = self._statistics(latents)
        return latents * std / self.vae.config.scaling_factor + mean

    def _statistics(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.vae.latents_mean.view(1, -1, 1, 1, 1).to(latents)
        std = self.vae.latents_std.view(1, -1, 1, 1, 1).to(latents)
        return mean, std

    # -- sampling -------------------------------------------------------------------------------

    def schedule(
        self, scheduler: FlowMatchEulerDiscreteScheduler, request: Request, plan: Plan
    ) -> torch.Tensor:
        """Set the scheduler's schedule; return its timesteps.

        GRID: ``steps`` sigmas from 1 to 1/steps, shifted by the sequence length. CONDITIONS: the
        request's timesteps or the linear-quadratic schedule's, with the sigmas they make (shifted by
        the sequence length only where the scheduler shifts dynamically; LTXConditionPipeline
        itself refuses such a scheduler).
        """
        _, _, frames, height, width = plan.shape
        mu = sequence_shift(frames * height * width, self.scheduler_config)
        if plan.recipe == GRID:
            sigmas = np.linspace(1.0, 1 / request.steps, request.steps)
            scheduler.set_timesteps(request.steps, device=self.device, sigmas=sigmas, mu=mu)
        else:
            if request.timesteps is not None:
                timesteps = np.array(request.timesteps).astype(np.float32)
            else:
                timesteps = (linear_quadratic_sigmas(request.steps) * 1000).numpy()
            sigmas = timesteps / scheduler.config.num_train_timesteps
            scheduler.set_timesteps(device=self.device, sigmas=sigmas, timesteps=timesteps, mu=mu)
        return scheduler.timesteps

    def start(
        self,
        plan: Plan,
        request: Request,
        scheduler: FlowMatchEulerDiscreteScheduler,
        timesteps: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[Tokens, torch.Tensor]:
        """The starting tokens of one video and the timesteps left to run, drawing as diffusers does."""
        if plan.recipe == GRID and plan.image is None:
            return Tokens(
                self.layout.pack(cpu_randn(plan.shape, generator, self.device, torch.float32))
            ), timesteps
        if plan.recipe == GRID:
            image = self.normalised(plan.image.sample(generator).float())
            return first_frame_tokens(image, plan.shape, self.layout, generator), timesteps
        noise = cpu_randn(plan.shape, generator, self.device, torch.float32)
        start = noise
        if plan.clip is not None:
            timesteps = start_timesteps(scheduler, len(timesteps), request.strength)
            sigma = scheduler.sigmas[len(scheduler.timesteps) - len(timesteps)].to(noise)
            start = sigma * noise + (1 - sigma) * plan.clip.to(noise)
        tokens = keyframe_tokens(
            start, list(plan.keyframes), self.normalised, self.layout, request.fps, generator
        )
        return tokens, timesteps

    def denoise(
        self,
        tokens: Tokens,
        timesteps: torch.Tensor,
        scheduler: FlowMatchEulerDiscreteScheduler,
        prompt: Prompt,
        negative: Prompt | None,
        request: Request,
        plan: Plan,
        generator: torch.Generator,
        on_step: Callable[[int, int, torch.Tensor], None],
        travel: FrameText | None = None,
    ) -> torch.Tensor:
        """Run the sampler over ``timesteps``; return the video's final latents (1, c, f, h, w), float32.

        With guidance (``negative`` given) each step makes one transformer call on the negative and
        the positive prompt as a batch of two, as diffusers does, and mixes them:
        uncond + guidance * (cond - uncond), rescaled by ``guidance_rescale``. With ``travel`` the
        prompt's first latent frames read their own text (prompt travel).
        """
        text = None if travel is None else replace(travel, start=tokens.extra)
        latents = tokens.latents
        noise_scale = request.image_cond_noise_scale
        noise_scale = DEFAULT_IMAGE_COND_NOISE_SCALE if noise_scale is None else noise_scale
        context = prompt if negative is None else _batched(negative, prompt)
        captions = [self.transformer.caption_projection]
        with self.speedups.remembering_text(self.device, self.cross_attentions, captions):
            for i, t in enumerate(timesteps):
                if plan.recipe == CONDITIONS and tokens.start is not None and noise_scale > 0:
                    latents = renoised_held(tokens, latents, t / 1000.0, noise_scale, generator)
                timestep = self.token_timesteps(t, tokens, plan.recipe)
                batch = context.embeds.shape[0]
                velocity = self.predict(latents, timestep, context, tokens, plan, request.fps, batch, text)
                if negative is not None:
                    uncond, cond = velocity.chunk(2)
                    velocity = uncond + request.guidance * (cond - uncond)
                    if request.guidance_rescale:
                        velocity = rescaled(velocity, cond, request.guidance_rescale)
                latents = self.step(scheduler, velocity, t, latents, timestep, tokens, plan.recipe)
                on_step(i + 1, len(timesteps), self._video_latents(latents, tokens, plan))
        return self._video_latents(latents, tokens, plan)

    @property
    def cross_attentions(self) -> list[nn.Module]:
        """The transformer's cross-attention modules, one per block (they read the text)."""
        return [block.attn2 for block in self.transformer.transformer_blocks]

    @staticmethod
    def token_timesteps(t: torch.Tensor, tokens: Tokens, recipe: str) -> torch.Tensor:
        """The transformer's timesteps: (1,) for all tokens, or (1, tokens), held tokens lower.

        GRID: t, 0 for held tokens. CONDITIONS: t, at most (1 - strength) * 1000 per token.
        """
        if recipe == GRID:
            timestep = t.expand(1)
            return timestep if tokens.strength is None else timestep.unsqueeze(-1) * (1 - tokens.strength)
        timestep = t.expand(1).unsqueeze(-1).float()
        if tokens.strength is None:
            return timestep
        return torch.min(timestep, (1 - tokens.strength) * 1000.0)

    @staticmethod
    def step(
        scheduler: FlowMatchEulerDiscreteScheduler,
        velocity: torch.Tensor,
        t: torch.Tensor,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        tokens: Tokens,
        recipe: str,
    ) -> torch.Tensor:
        """One Euler step. GRID: every token at the step's sigma, held tokens kept. CONDITIONS: each
        token from its own timestep to the schedule's next lower sigma, and only once the schedule
        has come down to the token's (1 - strength)."""
        if recipe == GRID:
            stepped = scheduler.step(velocity, t, latents, return_dict=False)[0]
            if tokens.strength is None:
                return stepped
            return torch.where(tokens.strength.unsqueeze(-1) == 1, latents, stepped)
        stepped = scheduler.step(-velocity, t, latents, per_token_timesteps=timestep, return_dict=False)[0]
        if tokens.strength is None:
            return stepped
        free = (t / 1000 - 1e-6 < (1.0 - tokens.strength)).unsqueeze(-1)
        return torch.where(free, stepped, latents)

    def predict(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        context: Prompt,
        tokens: Tokens,
        plan: Plan,
        fps: float,
        batch: int,
        text: FrameText | None = None,
    ) -> torch.Tensor:
        """One transformer call on ``batch`` copies of the tokens (one per prompt in ``context``), in
        the "cond_uncond" cache context diffusers' LTX pipelines use; float32 velocities. With
        ``text`` the first latent frames' cross-attention reads it (prompt travel)."""
        if tokens.coords is not None:
            positions: dict[str, object] = {"video_coords": tokens.coords.repeat(batch, 1, 1)}
        else:
            _, _, frames, height, width = plan.shape
            scale = (self.layout.temporal / fps, self.layout.spatial, self.layout.spatial)
            positions = {
                "num_frames": frames,
                "height": height,
                "width": width,
                "rope_interpolation_scale": scale,
            }
        model_input = latents.repeat(batch, 1, 1).to(self.dtype)
        timestep = timestep.expand(batch, *timestep.shape[1:])
        with self.transformer.cache_context("cond_uncond"), frame_text(self.cross_attentions, text):
            velocity = self.transformer(
                hidden_states=model_input,
                encoder_hidden_states=context.embeds,
                timestep=timestep,
                encoder_attention_mask=context.mask,
                return_dict=False,
                **positions,
            )[0]
        return velocity.float()

    def _video_latents(self, latents: torch.Tensor, tokens: Tokens, plan: Plan) -> torch.Tensor:
        return self.layout.unpack(tokens.video(latents), plan.shape)

    # -- decoding -------------------------------------------------------------------------------

    def decode_inputs(
        self, latents: torch.Tensor, request: Request, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """What decoding needs, on the CPU: the normalised latents and, for a timestep-conditioned VAE,
        the decode timestep, the noise scale and the noise (drawn now, after denoising, as diffusers)."""
        saved = {"latents": latents.cpu()}
        if not self.vae.config.timestep_conditioning:
            return saved
        noise = cpu_randn(tuple(latents.shape), generator, torch.device("cpu"), torch.float32)
        decode_timestep = request.decode_timestep or 0.0
        scale = decode_timestep if request.decode_noise_scale is None else request.decode_noise_scale
        saved["decode_noise"] = noise
        saved["decode_timestep"] = torch.tensor([decode_timestep])
        saved["decode_noise_scale"] = torch.tensor([scale])
        return saved

    def decode_saved(self, saved: dict[str, torch.Tensor], chunk: int | None) -> tuple[np.ndarray, int]:
        """Decode what ``save_latents`` kept: frames (F, H, W, 3) and the frames decoded at once (the
        LTX VAE decodes the whole clip, or its tiles: ``chunk`` is not used). It runs under the same
        autograd mode as ``generate``, where the CPU's oneDNN linear layers take the same kernels."""
        with self.speedups.running():
            frames, _ = self.decode(saved)
        return frames, frames.shape[0]

    def decode(self, saved: dict[str, torch.Tensor]) -> tuple[np.ndarray, Tiling | None]:
        """VAE-decode ``decode_inputs`` to float frames (F, H, W, 3) in [0, 1], tiled where the whole
        clip would not fit in free memory (``ltx_memory``); also the tiling used."""
        latents = self.denormalised(saved["latents"].to(self.device, torch.float32))
        timestep = None
        if "decode_timestep" in saved:
            scale = saved["decode_noise_scale"].to(latents).view(-1, 1, 1, 1, 1)
            latents = (1 - scale) * latents + scale * saved["decode_noise"].to(latents)
            timestep = saved["decode_timestep"].to(self.device, self.vae.dtype)
        video, tiling = decode_latents(self.vae, latents.to(self.vae.dtype), timestep)
        video = (video.float() / 2 + 0.5).clamp(0, 1)
        return video[0].permute(1, 2, 3, 0).cpu().numpy(), tiling


def _batched(negative: Prompt, prompt: Prompt) -> Prompt:
    """The negative and the positive prompt as one batch, in diffusers' order."""
    return Prompt(torch.cat([negative.embeds, prompt.embeds]), torch.cat([negative.mask, prompt.mask]))


def rescaled(guided: torch.Tensor, cond: torch.Tensor, factor: float) -> torch.Tensor:
    """``guidance_rescale`` (Lin et al. 2023, section 3.4): the guided prediction moved ``factor`` of
    the way to itself scaled to the conditional prediction's standard deviation (per video)."""
    dims = list(range(1, guided.ndim))
    matched = guided * (cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True))
    return factor * matched + (1 - factor) * guided
