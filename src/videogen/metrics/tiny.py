"""Tiny random-weight encoders in the Hub layout, for tests and offline checks of the learned metrics.

They load through the same code as the real CLIP, DINO and LAION files, so a test exercises the
whole path (folder -> model -> preprocessing -> embeddings -> metric) in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from videogen.testing import write_tiny_clip_tokenizer


def build_tiny_clip(folder: Path, seed: int = 0, projection_dim: int = 16) -> Path:
    """A CLIPModel (32 px images, 16-dim projection) with the generated tokenizer, saved to ``folder``."""
    from transformers import CLIPConfig, CLIPModel

    folder = Path(folder)
    write_tiny_clip_tokenizer(folder)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    return folder


def build_tiny_dino(folder: Path, seed: int = 0) -> Path:
    """A ViTModel (32 px images, 8 px patches) in the layout of facebook/dino-vitb16, saved to ``folder``."""
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=2,
    )
    torch.manual_seed(seed)
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    return Path(folder)


def write_tiny_aesthetic_head(path: Path, dim: int = 16, seed: int = 0) -> Path:
    """A linear head ``dim -> 1`` saved like LAION's sa_0_4_vit_l_14_linear.pth (a torch state dict)."""
    torch.manual_seed(seed)
    torch.save(torch.nn.Linear(dim, 1).state_dict(), path)
    return Path(path)
