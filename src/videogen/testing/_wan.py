"""Tiny Wan 2.1 / 2.2 text-to-video models (WanPipeline layout), and the parts other Wan builders reuse.

The shapes follow diffusers' own Wan test configurations (tests/pipelines/wan/): a 2-layer transformer
with 2 heads of 12, a VAE of base width 3, and a UMT5 text encoder of width 32. That text encoder and
its tokenizer are built here instead of downloaded: a Unigram vocabulary of the words of typical video
prompts (``_tokenizer.PROMPTS``) saved as transformers' ``T5Tokenizer`` (what ``AutoTokenizer`` loads
from the real repos' tokenizer folder) and a random ``UMT5EncoderModel``.

Variants, as the real diffusers-layout repos list them in model_index.json:

- "wan-t2v" (Wan-AI/Wan2.1-T2V-1.3B-Diffusers): one transformer, the Wan 2.1 VAE (z_dim 16, 8x spatial).
- "wan-ti2v" (Wan-AI/Wan2.2-TI2V-5B-Diffusers): ``expand_timesteps``; the Wan 2.2 VAE (z_dim 48,
  residual, patch 2, 16x spatial); a 48-channel transformer.
- "wan-a14b" (Wan-AI/Wan2.2-T2V-A14B-Diffusers): two experts, ``transformer`` for high noise and
  ``transformer_2`` for low, switched at ``boundary_ratio`` 0.875; the Wan 2.1 VAE.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

from ._layout import save_component, save_random_model, seeded, write_model_index
from ._tokenizer import PROMPTS

#: width of the tiny UMT5 encoder's hidden states, the transformer's ``text_dim``
UMT5_HIDDEN_SIZE = 32
PAD_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "</s>", "<unk>"
#: SentencePiece's word-start marker
WORD_START = "\u2581"
#: characters every text splits into when a word is not in the vocabulary
CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()"

#: the text-to-video components of a WanPipeline folder (transformer_2 comes with the A14B variants)
WAN_COMPONENTS: dict[str, tuple[str, str]] = {
    "scheduler": ("diffusers", "UniPCMultistepScheduler"),
    "text_encoder": ("transformers", "UMT5EncoderModel"),
    "tokenizer": ("transformers", "T5TokenizerFast"),
    "transformer": ("diffusers", "WanTransformer3DModel"),
    "vae": ("diffusers", "AutoencoderKLWan"),
}
#: where the A14B models hand over from the high-noise to the low-noise expert (T2V; I2V uses 0.9)
A14B_T2V_BOUNDARY_RATIO = 0.875


def umt5_vocab() -> list[tuple[str, float]]:
    """(piece, log-probability) in id order: pad 0, eos 1, unk 2 as UMT5 has them, then pieces.

    Whole words (with the word-start marker) score above any split into characters, so the prompts'
    words become single tokens and anything else still tokenizes, character by character.
    """
    words = Counter(word for prompt in PROMPTS for word in re.findall(r"[a-z]+", prompt.lower()))
    total = sum(words.values())
    pieces = [(PAD_TOKEN, 0.0), (EOS_TOKEN, 0.0), (UNK_TOKEN, 0.0), (WORD_START, -3.0)]
    pieces += [(WORD_START + word, math.log(count / total)) for word, count in sorted(words.items())]
    pieces += [(char, -12.0) for char in CHARACTERS]
    return pieces


def write_tiny_umt5_tokenizer(folder: Path) -> None:
    """Write a UMT5-style Unigram tokenizer (tokenizer.json and its config) into ``folder``.

    Like google/umt5-xxl it appends ``</s>`` and pads with ``<pad>`` (id 0); it has no extra ids.
    """
    tokenizer = T5Tokenizer(vocab=umt5_vocab(), extra_ids=0)
    tokenizer.save_pretrained(Path(folder))


def tiny_umt5_encoder() -> UMT5EncoderModel:
    """A 2-layer UMT5 encoder whose hidden size is the tiny transformers' ``text_dim``."""
    config = UMT5Config(
        vocab_size=len(umt5_vocab()),
        d_model=UMT5_HIDDEN_SIZE,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return UMT5EncoderModel(config).eval()


def write_umt5_text_encoder(folder: Path, seed: int) -> None:
    """Save the tiny UMT5 encoder and its tokenizer under ``folder/text_encoder`` and ``folder/tokenizer``."""
    save_random_model(folder, "text_encoder", tiny_umt5_encoder, seed)
    write_tiny_umt5_tokenizer(folder / "tokenizer")


def tiny_wan21_vae() -> AutoencoderKLWan:
    """The Wan 2.1 VAE's structure (z_dim 16, 8x spatial, 4x temporal) at base width 3.

    latents_mean / latents_std keep the class defaults, which are the real Wan 2.1 VAE's statistics.
    """
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )


def tiny_wan22_vae() -> AutoencoderKLWan:
    """The Wan 2.2 VAE's structure: z_dim 48, residual blocks, pixels patched 2x2 (12 channels in and
    out), 16x spatial and 4x temporal.

    Its latent statistics are made up (means around 0, spreads around 1, different per channel) so
    that a decode which skips or swaps them shows.
    """
    with seeded(1234):
        mean = (torch.randn(48) * 0.3).tolist()
        std = (0.6 + torch.rand(48)).tolist()
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=48,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[round(value, 4) for value in mean],
        latents_std=[round(value, 4) for value in std],
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    )


def tiny_wan_transformer(
    in_channels: int = 16,
    out_channels: int = 16,
    image_dim: int | None = None,
    pos_embed_seq_len: int | None = None,
) -> WanTransformer3DModel:
    """A 2-layer WanTransformer3DModel, patch (1, 2, 2); ``image_dim`` adds the Wan 2.1 I2V image
    cross-attention (the CLIP hidden size; added key/value projections of the transformer's width, as
    the real I2V models have), ``in_channels`` 36 its mask and condition channels, ``pos_embed_seq_len``
    FLF2V's position embedding over the first and last image's tokens."""
    heads, head_dim = 2, 12
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=heads,
        attention_head_dim=head_dim,
        in_channels=in_channels,
        out_channels=out_channels,
        text_dim=UMT5_HIDDEN_SIZE,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=image_dim,
        added_kv_proj_dim=None if image_dim is None else heads * head_dim,
        pos_embed_seq_len=pos_embed_seq_len,
    )


def wan_unipc_scheduler(flow_shift: float) -> UniPCMultistepScheduler:
    """UniPC with flow sigmas, as the Wan repos' scheduler/scheduler_config.json."""
    return UniPCMultistepScheduler(
        num_train_timesteps=1000,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=flow_shift,
        solver_order=2,
        solver_type="bh2",
        final_sigmas_type="zero",
        lower_order_final=True,
    )


def add_pipeline_settings(folder: Path, settings: dict[str, object]) -> None:
    """Add pipeline-level values (``boundary_ratio``, ``expand_timesteps``) to model_index.json."""
    path = Path(folder) / "model_index.json"
    index = json.loads(path.read_text(encoding="utf-8"))
    index.update(settings)
    path.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def build_tiny_wan_t2v(folder: Path, seed: int = 0) -> Path:
    """Write a tiny Wan 2.1 T2V folder (WanPipeline); latents are (1, 16, (F - 1) / 4 + 1, H/8, W/8)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_random_model(folder, "transformer", tiny_wan_transformer, seed)
    save_random_model(folder, "vae", tiny_wan21_vae, seed)
    write_umt5_text_encoder(folder, seed)
    save_component(folder, "scheduler", wan_unipc_scheduler(flow_shift=3.0))
    write_model_index(folder, "WanPipeline", WAN_COMPONENTS)
    return folder


def build_tiny_wan_ti2v(folder: Path, seed: int = 0) -> Path:
    """Write a tiny Wan 2.2 TI2V-5B folder (WanPipeline, ``expand_timesteps``); latents are
    (1, 48, (F - 1) / 4 + 1, H/16, W/16)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_random_model(folder, "transformer", lambda: tiny_wan_transformer(48, 48), seed)
    save_random_model(folder, "vae", tiny_wan22_vae, seed)
    write_umt5_text_encoder(folder, seed)
    save_component(folder, "scheduler", wan_unipc_scheduler(flow_shift=5.0))
    write_model_index(folder, "WanPipeline", WAN_COMPONENTS)
    add_pipeline_settings(folder, {"boundary_ratio": None, "expand_timesteps": True})
    return folder


def build_tiny_wan_a14b(folder: Path, seed: int = 0) -> Path:
    """Write a tiny Wan 2.2 T2V-A14B folder: two experts (different weights) and ``boundary_ratio``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_random_model(folder, "transformer", tiny_wan_transformer, seed)
    save_random_model(folder, "transformer_2", tiny_wan_transformer, seed + 1)
    save_random_model(folder, "vae", tiny_wan21_vae, seed)
    write_umt5_text_encoder(folder, seed)
    save_component(folder, "scheduler", wan_unipc_scheduler(flow_shift=12.0))
    components = {**WAN_COMPONENTS, "transformer_2": ("diffusers", "WanTransformer3DModel")}
    write_model_index(folder, "WanPipeline", components)
    add_pipeline_settings(folder, {"boundary_ratio": A14B_T2V_BOUNDARY_RATIO, "expand_timesteps": False})
    return folder
