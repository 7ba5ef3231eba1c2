"""Chunked decoding survives out-of-memory by retrying the remaining frames with smaller chunks."""

from __future__ import annotations

import pytest
import torch

from videogen.families.decoding import decode_in_chunks


def fake_decoder(limit: int, calls: list[int]):
    """Decodes by doubling values; runs out of memory on chunks larger than ``limit``."""

    def decode(part: torch.Tensor) -> torch.Tensor:
        calls.append(len(part))
        if len(part) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return part * 2

    return decode


def test_retries_with_halved_chunks_and_keeps_what_was_decoded(caplog) -> None:
    latents = torch.arange(10.0).reshape(10, 1, 1, 1)
    calls: list[int] = []
    images, chunk = decode_in_chunks(fake_decoder(2, calls), latents, 8)
    torch.testing.assert_close(images, latents * 2)
    assert chunk == 2
    assert calls == [8, 4, 2, 2, 2, 2, 2]
    assert "retrying with decode_chunk_size 4" in caplog.text


def test_no_retry_when_the_chunk_fits() -> None:
    calls: list[int] = []
    images, chunk = decode_in_chunks(fake_decoder(8, calls), torch.ones(5, 1, 1, 1), 4)
    assert (chunk, calls) == (4, [4, 1]) and images.shape == (5, 1, 1, 1)


def test_gives_up_at_one_frame() -> None:
    with pytest.raises(torch.cuda.OutOfMemoryError):
        decode_in_chunks(fake_decoder(0, []), torch.ones(3, 1, 1, 1), 2)
