"""A decode that fails after denoising keeps the work: the latents reach ``generate`` with the error.

Decoding comes last, after every denoising step, and is where a run most often runs out of memory.
An engine whose decode fails raises ``DecodeFailed`` with the videos it finished before and the
latents of the one it could not decode; ``generate`` writes both (the latents as a ``save_latents``
file, whether or not the request asked for one) and says how to decode them again with
``videogen decode``.
"""

from __future__ import annotations

from videogen.errors import is_out_of_memory
from videogen.families.base import GeneratedVideo


class DecodeFailed(Exception):
    """The decode of video ``index`` failed; ``undecoded`` holds its latents and no frames."""

    def __init__(
        self, finished: list[GeneratedVideo], undecoded: GeneratedVideo, index: int, cause: Exception
    ):
        self.finished = finished
        self.undecoded = undecoded
        self.index = index
        self.cause = cause
        super().__init__(f"decoding video {index} failed: {cause}")

    def advice(self, latents_path: str) -> str:
        """What the user reads: what failed, where the latents are, and how to decode them again."""
        what = "ran out of memory" if is_out_of_memory(self.cause) else f"failed ({self.cause})"
        return (
            f"decode: the VAE {what} after denoising video {self.index} (seed {self.undecoded.seed}); "
            f"its latents are kept in {latents_path}: decode them again with "
            f"`videogen decode {latents_path}` (add --device cpu where the accelerator has too little memory)"
        )
