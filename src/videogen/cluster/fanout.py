"""Running many items on a pool at once, from a command (a folder of images, a comparison's cells)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from videogen.sampling.progress import CancelFlag

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


def fan_out(
    run: Callable[[Item], Outcome], items: Sequence[Item], parallel: int, cancel: CancelFlag
) -> list[Outcome]:
    """``run`` on every item, ``parallel`` at once; the outcomes in the items' order.

    Ctrl-C sets ``cancel`` (when it is an Event) so that the runs on the actors stop at their next
    step instead of finishing for nobody; the first exception of a run is raised after the rest stop.
    """
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as threads:
        futures = [threads.submit(run, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            if isinstance(cancel, threading.Event):
                cancel.set()
            for future in futures:
                future.cancel()
            raise
