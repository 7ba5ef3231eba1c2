"""Who runs a claimed job: the embedded executor (this process, one job at a time) or a Ray pool.

Both take the same four calls from the worker: wait for a free slot, reserve the slot that should
run a request, run it there, release it. The job store stays the source of truth either way; an
executor only runs what the worker claimed.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from videogen.engines import EngineCache
from videogen.generate import GenerationResult, generate
from videogen.request import Request
from videogen.sampling.progress import CancelFlag, ProgressCallback
from videogen.server.settings import Settings


class Executor(Protocol):
    @property
    def size(self) -> int: ...

    def wait_idle(self, timeout: float) -> bool: ...

    def acquire(self, request: Request, cancel: CancelFlag | None = None) -> Any: ...

    def release(self, slot: Any) -> None: ...

    def run(
        self,
        request: Request,
        progress: ProgressCallback | None = None,
        cancel: CancelFlag | None = None,
        member: Any = None,
    ) -> GenerationResult: ...

    def preload(self, model: str) -> None: ...

    def close(self) -> None: ...


class EmbeddedExecutor:
    """Runs jobs in this process on its device, one at a time, with a bounded engine cache."""

    size = 1

    def __init__(self, max_engines: int) -> None:
        self.engines = EngineCache(max_engines=max_engines)
        self._free = threading.Semaphore(1)
        self._idle = threading.Event()
        self._idle.set()

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def acquire(self, request: Request, cancel: CancelFlag | None = None) -> None:
        self._free.acquire()
        self._idle.clear()

    def release(self, slot: None) -> None:
        self._idle.set()
        self._free.release()

    def run(
        self,
        request: Request,
        progress: ProgressCallback | None = None,
        cancel: CancelFlag | None = None,
        member: None = None,
    ) -> GenerationResult:
        return generate(request, progress, cancel, self.engines)

    def preload(self, model: str) -> None:
        self.engines.preload(model)

    def close(self) -> None:
        self.engines.clear()


def make_executor(settings: Settings) -> Executor:
    """A Ray pool when the settings name a cluster (this joins it and starts the actors), else this
    process."""
    if settings.ray is None:
        return EmbeddedExecutor(settings.max_engines)
    from videogen.cluster.pool import start_pool

    return start_pool(settings.ray, settings.max_engines)
