"""The Ray actor that runs generations on one GPU (or one share of a node's CPUs).

Each actor keeps its own engine cache, so a model stays loaded between the jobs sent to it. ``run``
streams the run's progress events to the caller as they happen and ends with the outputs. Runs
are threaded (``max_concurrency`` 2) only so that ``cancel`` can reach a running job; the pool
never sends an actor a second job while one runs.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from videogen.cluster.shipping import PackedRequest, PackedResult, collect_outputs, unpack_request
from videogen.errors import Cancelled, UserError, is_out_of_memory
from videogen.sampling.progress import ProgressEvent, WithPreviews


@dataclass(frozen=True)
class Failure:
    """Why a run on an actor failed, as plain data (the exception itself may not survive pickling)."""

    kind: str  # "user", "cancelled", "out_of_memory" or "internal"
    message: str


@dataclass(frozen=True)
class ActorFacts:
    """What the pool needs to know to choose an actor for a job."""

    pid: int
    node: str
    device: str
    memory_bytes: int


def _failure(exc: BaseException) -> Failure:
    if isinstance(exc, Cancelled):
        return Failure("cancelled", str(exc))
    if isinstance(exc, UserError):
        return Failure("user", str(exc))
    if is_out_of_memory(exc):
        return Failure("out_of_memory", str(exc))
    return Failure("internal", f"{type(exc).__name__}: {exc}")


def _device_memory(device: str) -> int:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_properties(0).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class GenerationActor:
    """One worker of the cluster (made a Ray actor by ``pool.WorkerPool``)."""

    def __init__(self, max_engines: int, threads: int | None) -> None:
        import torch

        from videogen.engines import EngineCache

        if threads:
            torch.set_num_threads(threads)
        self.engines = EngineCache(max_engines=max_engines)
        self.cancels: dict[str, threading.Event] = {}

    def facts(self) -> ActorFacts:
        import ray
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        node = ray.get_runtime_context().get_node_id()
        return ActorFacts(os.getpid(), node, device, _device_memory(device))

    def preload(self, model: str) -> None:
        """Load ``model``'s engine as a job with default settings would."""
        self.engines.preload(model)

    def cancel(self, task_id: str) -> None:
        """Stop ``task_id`` at its next step, if it runs here."""
        flag = self.cancels.get(task_id)
        if flag is not None:
            flag.set()

    def run(
        self, task_id: str, packed: PackedRequest, preview_every: int | None
    ) -> Iterator[ProgressEvent | PackedResult | Failure]:
        """Run one request: its progress events as they happen, then its outputs or its failure."""
        from videogen.generate import generate
        from videogen.memory import reset_peak_rss

        flag = self.cancels.setdefault(task_id, threading.Event())
        events: queue.Queue = queue.Queue()
        folder = Path(tempfile.mkdtemp(prefix="videogen-ray-"))
        inputs, outputs = folder / "inputs", folder / "outputs"
        progress = events.put if preview_every is None else WithPreviews(events.put, preview_every)

        def work() -> None:
            try:
                request = unpack_request(packed, inputs, outputs)
                reset_peak_rss()  # the record's peak is this run's, not the actor's life's
                result = generate(request, progress, flag, self.engines)
                events.put(collect_outputs(result, outputs, inputs))
            except BaseException as exc:  # reported to the caller as data; the actor lives on
                events.put(_failure(exc))

        thread = threading.Thread(target=work, name=f"videogen-{task_id}", daemon=True)
        thread.start()
        try:
            while True:
                item = events.get()
                yield item
                if isinstance(item, (PackedResult, Failure)):
                    return
        finally:
            flag.set()  # the caller went away: stop the run rather than finish it for nobody
            thread.join()
            shutil.rmtree(folder, ignore_errors=True)
            self.cancels.pop(task_id, None)
