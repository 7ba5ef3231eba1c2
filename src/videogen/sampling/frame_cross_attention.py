"""Prompt travel on a video diffusion transformer (Wan, LTX-Video): some latent frames read their own text.

These transformers flatten the latents into tokens frame by frame, row by row, and every token's
cross-attention reads the same text tokens. For prompt travel the first latent frames of a segment
each get a text embedding of their own (the previous segment's prompt blended into this one's).
While ``frame_text`` is active, each of the given cross-attention modules runs its own processor
twice: once on the travelled frames' tokens, grouped as a batch of one frame each with that frame's
text, and once on all other tokens with the text it was given. Attention is computed per query, so
where a frame's text equals the given one the result equals the stock call's; only the travelled
frames' keys and values are computed again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FrameText:
    """The text that the travelled latent frames of one transformer call read.

    ``context`` (frames, L, width): the text tokens in the transformer's width (after its caption
    projection), one set per travelled frame; they replace the last L tokens of the call's context
    (Wan 2.1 I2V puts its image tokens first). ``bias`` (frames, 1, L): the additive attention mask
    over those tokens, for models that mask the text (LTX-Video); None for models that do not.
    The travelled frames' tokens begin at token ``start`` (LTX-Video puts keyframe tokens first) and
    each frame has ``tokens_per_frame``. Only batch row ``row`` travels (the prompt branch of a
    batched guided call); the other rows read their own text, as given.
    """

    context: torch.Tensor
    bias: torch.Tensor | None
    tokens_per_frame: int
    start: int = 0
    row: int = 0

    @property
    def frames(self) -> int:
        return self.context.shape[0]


class _FrameGrouped:
    """A cross-attention processor that runs ``inner`` per travelled frame and once for the rest."""

    def __init__(self, inner: object, text: FrameText) -> None:
        self.inner = inner
        self.text = text

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *args: object,
        **kwargs: object,
    ) -> torch.Tensor:
        if encoder_hidden_states is None:
            raise ValueError("prompt travel applies to cross-attention; this call has no text")
        text = self.text
        batch, count, width = hidden_states.shape
        start, end = text.start, text.start + text.frames * text.tokens_per_frame
        if end > count:
            raise ValueError(f"prompt travel over tokens {start}-{end} of a sequence of {count}")
        travelled = hidden_states[:, start:end].reshape(batch * text.frames, text.tokens_per_frame, width)
        rows = slice(text.row * text.frames, (text.row + 1) * text.frames)
        length = text.context.shape[1]
        context = encoder_hidden_states.repeat_interleave(text.frames, dim=0)
        context[rows, -length:] = text.context.to(context)
        mask = None
        if attention_mask is not None:
            if text.bias is None:
                raise ValueError("this call masks its text; prompt travel needs a mask for each frame")
            mask = attention_mask.repeat_interleave(text.frames, dim=0)
            mask[rows, ..., -length:] = text.bias.to(mask)
        out = self.inner(attn, travelled, context, mask, *args, **kwargs)
        out = out.reshape(batch, end - start, -1)
        rest = torch.cat([hidden_states[:, :start], hidden_states[:, end:]], dim=1)
        if not rest.shape[1]:
            return out
        others = self.inner(attn, rest, encoder_hidden_states, attention_mask, *args, **kwargs)
        return torch.cat([others[:, :start], out, others[:, start:]], dim=1)


@contextlib.contextmanager
def frame_text(attentions: Iterable[nn.Module], text: FrameText | None) -> Iterator[None]:
    """Within the block, the cross-attention modules ``attentions`` hand the travelled frames ``text``
    (nothing changes without one)."""
    if text is None:
        yield
        return
    saved = [(attention, attention.processor) for attention in attentions]
    for attention, processor in saved:
        attention.processor = _FrameGrouped(processor, text)
    try:
        yield
    finally:
        for attention, processor in saved:
            attention.processor = processor
