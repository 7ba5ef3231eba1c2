"""Terminal output shared by the command-line modules: consoles, the error line, quiet libraries."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.markup import escape

#: results go to stdout; progress, warnings and errors to stderr (so ``--json`` output stays clean)
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise (no stack trace for users)."""
    err.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def quiet_libraries() -> None:
    """Library chatter (deprecations, load reports, progress bars) would drown our progress display."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
