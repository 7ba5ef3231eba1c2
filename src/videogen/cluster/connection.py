"""Joining a Ray cluster, or starting a local one; Ray is an optional extra (``videogen[ray]``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from videogen.errors import FieldError, UserError

INSTALL = "Ray is not installed here; install it with: pip install 'videogen[ray]'"


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL) from None
    return ray


@dataclass(frozen=True)
class ClusterOptions:
    """``--ray ADDRESS`` and its companions. ADDRESS: ``local`` starts a cluster in this process's
    machine; ``auto`` joins the one ``ray start`` runs here; else a cluster address (host:port or
    ray://host:port)."""

    address: str
    #: actors to start; None: one per GPU of the cluster, or on a CPU cluster one per
    #: ``cpus_per_worker`` CPUs
    workers: int | None = None
    cpus_per_worker: int = 1

    def __post_init__(self) -> None:
        if not self.address.strip():
            raise FieldError("ray", self.address, "local, auto, or a cluster address such as 10.0.0.5:6379")
        if self.workers is not None and self.workers < 1:
            raise FieldError("ray_workers", self.workers, "1 or more")
        if self.cpus_per_worker < 1:
            raise FieldError("ray_cpus_per_worker", self.cpus_per_worker, "1 or more")


def connect(options: ClusterOptions) -> ModuleType:
    """Join the cluster ``options`` names, or start the local one (nothing if already joined)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if options.address == "local":
        cpus = (options.workers or 1) * options.cpus_per_worker
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        return ray
    try:
        ray.init(address=options.address, log_to_driver=False)
    except (ConnectionError, RuntimeError) as exc:
        raise FieldError("ray", options.address, f"no Ray cluster answers there ({exc})") from None
    return ray
