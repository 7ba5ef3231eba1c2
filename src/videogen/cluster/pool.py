"""A pool of Ray actors that run requests: which actor gets a job, progress and cancel across the
cluster, and an actor that dies.

Dispatch: among the idle actors whose device holds the model, one that already has it loaded (a
large model takes minutes to load), else the first idle one. An actor whose device is smaller than
the model's weights at the run's precision never gets it; a model no actor can hold is refused at
once. A run whose actor dies raises ``WorkerLost`` and the actor is replaced; the caller decides
whether the job runs again (the server counts it as one attempt).
"""

from __future__ import annotations

import json
import logging
import struct
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videogen.cluster.actor import ActorFacts, Failure, GenerationActor
from videogen.cluster.connection import ClusterOptions, connect, import_ray
from videogen.cluster.shipping import PackedResult, pack_request, write_outputs
from videogen.errors import Cancelled, UserError
from videogen.generate import GenerationResult
from videogen.request import Request
from videogen.sampling.progress import CancelFlag, ProgressCallback, ProgressEvent, WithPreviews

log = logging.getLogger(__name__)

#: seconds between looks at a run's cancel flag
CANCEL_POLL = 0.25
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


class WorkerLost(Exception):  # noqa: N818 - a condition of the cluster, named for what happened
    """The actor running a job died (process killed, out of host memory, node lost)."""


class RemoteFailure(Exception):
    """A run failed on its actor for a reason that is not the user's (the message says which)."""


@dataclass
class Member:
    """One actor of the pool and what the pool knows of it."""

    index: int
    actor: Any
    facts: ActorFacts
    busy: bool = False
    #: models its engine cache holds, least recent first
    loaded: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"worker {self.index} (pid {self.facts.pid}, {self.facts.device}, node {self.facts.node[:8]})"


def weight_parameters(request: Request) -> int | None:
    """The parameter count of the request's model files here (safetensors headers), or None where
    they cannot be read here (then no worker is ruled out for size)."""
    from videogen.catalog import resolve_model
    from videogen.loading import locate_weights

    try:
        spec = resolve_model(request.model)
        folder = locate_weights(spec, request.revision, request.variant)
    except (UserError, OSError):
        return None
    total = 0
    for path in folder.rglob("*.safetensors"):
        total += _safetensors_parameters(path)
    return total or None


def _safetensors_parameters(path: Path) -> int:
    with path.open("rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    total = 0
    for name, entry in header.items():
        if name != "__metadata__":
            count = 1
            for size in entry["shape"]:
                count *= size
            total += count
    return total


def needed_bytes(parameters: int | None, dtype: str, device: str) -> int | None:
    """The weights' bytes at the precision a run on ``device`` uses ("auto": fp16 on CUDA, else fp32)."""
    if parameters is None:
        return None
    name = dtype if dtype != "auto" else ("fp16" if device == "cuda" else "fp32")
    return parameters * DTYPE_BYTES.get(name, 4)


def choose(members: list[Member], model: str, parameters: int | None, dtype: str) -> Member | None:
    """The idle member to run ``model`` on: one that has it loaded, else the first idle one that can
    hold it; None if all that can hold it are busy. UserError if none can hold it at all."""
    fitting = [
        member
        for member in members
        if (need := needed_bytes(parameters, dtype, member.facts.device)) is None
        or need <= member.facts.memory_bytes
    ]
    if not fitting:
        largest = max(members, key=lambda member: member.facts.memory_bytes)
        need = needed_bytes(parameters, dtype, largest.facts.device) or 0
        raise UserError(
            f"model: {model} needs about {need / 2**30:.1f} GiB for its weights, more than any worker's "
            f"device holds (the largest: {largest.facts.memory_bytes / 2**30:.1f} GiB, "
            f"{largest.describe()})"
        )
    idle = [member for member in fitting if not member.busy]
    warm = [member for member in idle if model in member.loaded]
    return (warm or idle or [None])[0]


class WorkerPool:
    """``workers`` actors, each with one GPU (``gpus``) or ``cpus_per_worker`` CPUs."""

    def __init__(self, workers: int, cpus_per_worker: int = 1, gpus: bool = False, max_engines: int = 1):
        if workers < 1:
            raise UserError(f"ray_workers: {workers}; give 1 or more")
        self.ray = import_ray()
        self.cpus_per_worker, self.gpus, self.max_engines = cpus_per_worker, gpus, max_engines
        self._changed = threading.Condition()
        self.members = [self._start(index) for index in range(workers)]

    def _start(self, index: int) -> Member:
        resources = {"num_gpus": 1, "num_cpus": 1} if self.gpus else {"num_cpus": self.cpus_per_worker}
        remote = self.ray.remote(GenerationActor).options(max_concurrency=2, **resources)
        actor = remote.remote(self.max_engines, None if self.gpus else self.cpus_per_worker)
        return Member(index, actor, self.ray.get(actor.facts.remote()))

    @property
    def size(self) -> int:
        return len(self.members)

    def idle(self) -> int:
        with self._changed:
            return sum(not member.busy for member in self.members)

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for an idle member; whether there is one."""
        with self._changed:
            return self._changed.wait_for(lambda: any(not m.busy for m in self.members), timeout)

    def acquire(self, request: Request, cancel: CancelFlag | None = None) -> Member:
        """Reserve the member that should run ``request``, waiting for one to be free."""
        parameters = weight_parameters(request)
        with self._changed:
            while True:
                member = choose(self.members, request.model, parameters, request.dtype)
                if member is not None:
                    member.busy = True
                    return member
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                self._changed.wait(CANCEL_POLL)

    def release(self, member: Member) -> None:
        with self._changed:
            member.busy = False
            self._changed.notify_all()

    def run(
        self,
        request: Request,
        progress: ProgressCallback | None = None,
        cancel: CancelFlag | None = None,
        member: Member | None = None,
    ) -> GenerationResult:
        """Run ``request`` on ``member`` (reserved with ``acquire``; else one is chosen and reserved
        here) and write its outputs under ``request.out_dir`` on this machine."""
        if member is None:
            member = self.acquire(request, cancel)
            try:
                return self._run_on(member, request, progress, cancel)
            finally:
                self.release(member)
        return self._run_on(member, request, progress, cancel)

    def run_retrying(
        self,
        request: Request,
        progress: ProgressCallback | None = None,
        cancel: CancelFlag | None = None,
        attempts: int = 3,
    ) -> GenerationResult:
        """``run``, again on another (or the replaced) actor when the actor dies, up to ``attempts``
        runs: what a command line fan-out does, where no job store counts the attempts."""
        for attempt in range(1, attempts + 1):
            try:
                return self.run(request, progress, cancel)
            except WorkerLost as exc:
                if attempt == attempts:
                    raise RemoteFailure(f"{exc}; that was attempt {attempt} of {attempts}") from None
                log.warning("%s; running it again (attempt %d of %d)", exc, attempt + 1, attempts)
        raise AssertionError("unreachable")

    def _run_on(
        self, member: Member, request: Request, progress: ProgressCallback | None, cancel: CancelFlag | None
    ) -> GenerationResult:
        packed = pack_request(request)
        task_id = uuid.uuid4().hex
        preview_every = progress.every if isinstance(progress, WithPreviews) else None
        stream = member.actor.run.remote(task_id, packed, preview_every)
        done = threading.Event()
        watcher = threading.Thread(target=_pass_cancel, args=(member, task_id, cancel, done), daemon=True)
        watcher.start()
        try:
            for ref in stream:
                item = self.ray.get(ref)
                if isinstance(item, ProgressEvent):
                    if progress is not None:
                        progress(item)
                elif isinstance(item, PackedResult):
                    member.loaded = [*[m for m in member.loaded if m != request.model], request.model]
                    del member.loaded[: -self.max_engines]
                    return write_outputs(item, packed, request)
                elif isinstance(item, Failure):
                    raise _as_exception(item)
            raise WorkerLost(f"{member.describe()} ended the run without a result")
        except self.ray.exceptions.RayActorError as exc:
            lost = member.describe()
            log.warning("%s died during a run; starting a new one", lost)
            self._replace(member)
            raise WorkerLost(f"{lost} died during the run ({type(exc).__name__})") from None
        finally:
            done.set()
            watcher.join()

    def _replace(self, member: Member) -> None:
        """Start a new actor in a dead member's place (the member stays reserved by its caller)."""
        self.ray.kill(member.actor, no_restart=True)
        fresh = self._start(member.index)
        member.actor, member.facts, member.loaded = fresh.actor, fresh.facts, []

    def preload(self, model: str) -> None:
        """Load ``model`` (a catalog id or a folder every node has) on every member, in parallel."""
        self.ray.get([member.actor.preload.remote(model) for member in self.members])
        for member in self.members:
            member.loaded = [*[m for m in member.loaded if m != model], model][-self.max_engines :]

    def close(self) -> None:
        for member in self.members:
            self.ray.kill(member.actor, no_restart=True)


def _pass_cancel(member: Member, task_id: str, cancel: CancelFlag | None, done: threading.Event) -> None:
    """While a run is on ``member``: send it the cancel once ``cancel`` is set."""
    while cancel is not None and not done.wait(CANCEL_POLL):
        if cancel.is_set():
            member.actor.cancel.remote(task_id)
            return


def _as_exception(failure: Failure) -> Exception:
    if failure.kind == "cancelled":
        return Cancelled()
    if failure.kind == "user":
        return UserError(failure.message)
    if failure.kind == "out_of_memory":
        return MemoryError(failure.message)
    return RemoteFailure(failure.message)


def start_pool(options: ClusterOptions, max_engines: int = 1) -> WorkerPool:
    """Connect to (or start) the cluster and start the pool's actors on it, each keeping up to
    ``max_engines`` engines loaded."""
    ray = connect(options)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    workers = options.workers or gpus or max(1, int(resources.get("CPU", 1)) // options.cpus_per_worker)
    return WorkerPool(workers, options.cpus_per_worker, gpus > 0, max_engines)
