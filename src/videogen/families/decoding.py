"""VAE decoding in chunks of frames, with a retry at a smaller chunk on out-of-memory.

Decoding is the step most likely to run out of GPU memory (an SVD-XT decode costs more than a
whole guided denoising step), and it comes last: losing the run there wastes every step before it.
So an out-of-memory error halves the chunk and decodes the remaining frames from the latents
already computed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)


def decode_in_chunks(
    decode: Callable[[torch.Tensor], torch.Tensor], latents: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, int]:
    """Decode (frames, channels, h, w) latents ``chunk`` frames at a time.

    Returns the decoded images and the chunk size that finally worked.
    """
    parts: list[torch.Tensor] = []
    start = 0
    while start < len(latents):
        part = latents[start : start + chunk]
        try:
            parts.append(decode(part))
        except torch.cuda.OutOfMemoryError:
            if chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            log.warning("out of memory while decoding; retrying with decode_chunk_size %d", chunk)
            continue
        start += len(part)
    return torch.cat(parts), chunk
