"""Progress of a comparison, one event per cell, for front-ends to show."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from videogen.compare.cells import Cell


@dataclass(frozen=True)
class CellEvent:
    """``stage`` is "generate", "skip" (finished earlier), "failed", "import" (--from-dir),
    "evaluate" or "report" (last); ``done`` of ``total`` cells of that phase came before this one."""

    stage: str
    done: int
    total: int
    cell: Cell | None = None
    note: str = ""


CellCallback = Callable[[CellEvent], None]
