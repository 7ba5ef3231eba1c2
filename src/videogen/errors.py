"""Errors that are part of the user interface.

A ``UserError`` is a mistake the user can fix (bad input, missing weights). Front-ends print
its message and exit (CLI) or answer 4xx (server); they never show a stack trace for it.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment, with a message meant for people."""


class FieldError(UserError):
    """A request field holds a value that is not allowed.

    The message names the field, the value given and what is allowed.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: {shown(value)} is not allowed; {allowed}")


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters, so an error never echoes a huge input back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 15]}... ({len(text)} chars)"


class WeightsMissingError(UserError):
    """Model weights are not on disk and cannot be downloaded."""


class Cancelled(Exception):  # noqa: N818 - reads better at raise sites than CancelledError
    """Raised inside an engine when the caller's cancel flag is set between steps."""


#: how torch words an allocation failure on CUDA/MPS ("out of memory") and on the CPU
OUT_OF_MEMORY_WORDS = ("out of memory", "not enough memory", "can't allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure, on any device."""
    import torch  # here, not at the top: the CLI imports this module long before it needs torch

    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(words in str(exc).lower() for words in OUT_OF_MEMORY_WORDS)
