"""Encoders for the learned metrics (CLIP, DINO, the LAION aesthetic head), found the way models are.

An encoder comes from a local folder (``--clip-model DIR``) or the Hugging Face cache, never the
network. When it is not there, loading raises ``EncoderUnavailable`` whose message becomes the
skipped metric's note. Images are resized and normalised here in torch, as VBench's transforms
do, so nothing depends on the transformers image processors (which need torchvision).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from huggingface_hub import try_to_load_from_cache

from videogen.metrics.sources import AESTHETIC_HEAD_ENV

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
BATCH = 16
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


class EncoderUnavailable(Exception):  # noqa: N818 - it names a state, like Cancelled
    """An encoder could not be loaded; the message says why and how to provide it."""


class ClipEncoder:
    """CLIP image and text embeddings, L2-normalised, as numpy float32."""

    def __init__(self, model: torch.nn.Module, tokenizer: object | None, source: str, device: torch.device):
        self.model, self.tokenizer, self.source, self.device = model, tokenizer, source, device
        self.size = int(model.config.vision_config.image_size)
        self.dim = int(model.config.projection_dim)

    @torch.no_grad()
    def images(self, frames: np.ndarray) -> np.ndarray:
        """Embeddings of uint8 RGB images (N, H, W, 3): short side resized (bicubic), centre crop."""
        chunks = []
        for start in range(0, len(frames), BATCH):
            pixels = _resize_short_side(frames[start : start + BATCH], self.size, "bicubic")
            pixels = _normalise(_centre_crop(pixels, self.size), CLIP_MEAN, CLIP_STD).to(self.device)
            pooled = self.model.vision_model(pixel_values=pixels).pooler_output
            chunks.append(self.model.visual_projection(pooled))
        return _unit(torch.cat(chunks))

    @torch.no_grad()
    def text(self, prompt: str) -> np.ndarray:
        """Embedding of a prompt, truncated to the tokenizer's length (77 for CLIP)."""
        if self.tokenizer is None:
            raise EncoderUnavailable(f"no CLIP tokenizer in {self.source}")
        tokens = self.tokenizer(prompt, truncation=True, return_tensors="pt").to(self.device)
        pooled = self.model.text_model(input_ids=tokens["input_ids"]).pooler_output
        return _unit(self.model.text_projection(pooled))[0]


class DinoEncoder:
    """DINO ViT [CLS] features (after the final norm, as torch.hub's DINO returns them), L2-normalised."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.model, self.device = model, device
        self.size = int(model.config.image_size)

    @torch.no_grad()
    def images(self, frames: np.ndarray) -> np.ndarray:
        """Features of uint8 RGB images: short side resized to the model's size, no crop (as VBench)."""
        chunks = []
        for start in range(0, len(frames), BATCH):
            pixels = _resize_short_side(frames[start : start + BATCH], self.size, "bilinear")
            pixels = _normalise(pixels, IMAGENET_MEAN, IMAGENET_STD).to(self.device)
            hidden = self.model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
            chunks.append(hidden[:, 0])
        return _unit(torch.cat(chunks))


def load_clip(source: str, option: str, device: torch.device) -> ClipEncoder:
    """CLIPModel (and its tokenizer, when present) from a folder or the Hub cache."""
    name = _resolve(source, "CLIP", option)
    from transformers import AutoTokenizer, CLIPModel  # after _resolve: a missing encoder costs no import

    model = _from_pretrained(CLIPModel, name, "CLIP")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError):
        tokenizer = None
    return ClipEncoder(model.to(device).eval(), tokenizer, source, device)


def load_dino(source: str, option: str, device: torch.device) -> DinoEncoder:
    """A DINO ViT (transformers ViTModel) from a folder or the Hub cache."""
    name = _resolve(source, "DINO", option)
    from transformers import ViTModel

    model = _from_pretrained(ViTModel, name, "DINO", add_pooling_layer=False)
    return DinoEncoder(model.to(device).eval(), device)


def load_aesthetic_head(path: str | None, device: torch.device) -> torch.nn.Linear:
    """LAION's linear aesthetic predictor: a state dict with ``weight`` (1, D) and ``bias`` (1,)."""
    if not path:
        raise EncoderUnavailable(
            f"LAION aesthetic head not given; set {AESTHETIC_HEAD_ENV} or pass --aesthetic-head FILE "
            "(sa_0_4_vit_l_14_linear.pth from github.com/LAION-AI/aesthetic-predictor)"
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise EncoderUnavailable(f"aesthetic head file not found: {path}")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is a skip note, not a crashed comparison
        raise EncoderUnavailable(f"cannot read aesthetic head {path}: {exc}") from None
    if not isinstance(state, dict):
        state = {}
    weight, bias = state.get("weight"), state.get("bias")
    if weight is None or bias is None or weight.ndim != 2 or weight.shape[0] != 1 or bias.shape != (1,):
        raise EncoderUnavailable(
            f"{path} is not a linear aesthetic head "
            "(expected 'weight' of shape (1, D) and 'bias' of shape (1,))"
        )
    head = torch.nn.Linear(weight.shape[1], 1)
    head.load_state_dict({"weight": weight.float(), "bias": bias.float()})
    return head.to(device).eval()


def _resolve(source: str, what: str, option: str) -> str:
    """A folder's path, or a Hub repo id whose files are in the cache; never the network."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        return str(folder)
    if not _REPO_ID.fullmatch(source) or source.startswith("."):
        raise EncoderUnavailable(f"{what} folder not found: {source}")
    if try_to_load_from_cache(source, "config.json") is None:
        raise EncoderUnavailable(
            f"{what} weights not found in the Hugging Face cache ({source}); pass {option} DIR"
        )
    return source


def _from_pretrained(cls: type, name: str, what: str, **kwargs: object) -> torch.nn.Module:
    try:
        return cls.from_pretrained(name, local_files_only=True, **kwargs)
    except Exception as exc:  # a broken folder or cache entry is a skip note, not a crashed comparison
        raise EncoderUnavailable(f"cannot load {what} from {name}: {exc}") from None


def _resize_short_side(frames: np.ndarray, size: int, mode: str) -> torch.Tensor:
    pixels = torch.from_numpy(np.array(frames, dtype=np.float32)).permute(0, 3, 1, 2) / 255.0
    height, width = pixels.shape[-2:]
    scale = size / min(height, width)
    target = (max(size, round(height * scale)), max(size, round(width * scale)))
    resized = F.interpolate(pixels, size=target, mode=mode, antialias=True, align_corners=False)
    return resized.clamp(0.0, 1.0)


def _centre_crop(pixels: torch.Tensor, size: int) -> torch.Tensor:
    height, width = pixels.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return pixels[..., top : top + size, left : left + size]


def _normalise(pixels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    return (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _unit(features: torch.Tensor) -> np.ndarray:
    return F.normalize(features.float(), dim=-1).cpu().numpy()
