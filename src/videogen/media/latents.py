"""Latents kept beside a video (``save_latents``), so ``videogen decode`` can decode them again
(another chunk size, format or VAE setting) without denoising again.

The file is safetensors: the tensors the engine needs, and the video's sidecar as JSON metadata,
so one file is enough to find the model and the settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from videogen.errors import UserError

METADATA_KEY = "videogen_sidecar"


def write_latents(path: Path, tensors: dict[str, torch.Tensor], sidecar: dict[str, Any]) -> None:
    """Save ``tensors`` with ``sidecar`` as metadata.

    Written with a plain ``open`` so the file gets the permissions the umask gives the video beside
    it; safetensors' ``save_file`` creates its files readable by their owner alone.
    """
    contiguous = {name: tensor.contiguous() for name, tensor in tensors.items()}
    Path(path).write_bytes(save(contiguous, metadata={METADATA_KEY: json.dumps(sidecar)}))


def read_latents(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the sidecar of a latents file, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"latents: {str(path)!r} is not a file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError) as exc:
        raise UserError(f"latents: {str(path)!r} is not a safetensors file ({exc})") from None
    if METADATA_KEY not in metadata or "latents" not in tensors:
        raise UserError(f"latents: {str(path)!r} was not written by videogen --save-latents")
    return tensors, json.loads(metadata[METADATA_KEY])
