"""The ``--ray`` options that ``serve``, ``generate`` and ``compare`` share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from videogen.cluster.connection import ClusterOptions
from videogen.console import err
from videogen.errors import FieldError

if TYPE_CHECKING:
    from videogen.cluster.pool import WorkerPool

PANEL = "Ray cluster"
ADDRESS_HELP = (
    "Run on a Ray cluster: 'local' starts one on this machine, 'auto' joins the one `ray start` runs "
    "here, or give its address (needs videogen's ray extra)."
)
WORKERS_HELP = "Actors to start (default: one per GPU of the cluster; without GPUs, one per CPU share)."
CPUS_HELP = "CPUs of each actor on a cluster without GPUs (its torch threads)."

RayAddress = Annotated[str | None, typer.Option("--ray", help=ADDRESS_HELP, rich_help_panel=PANEL)]
RayWorkers = Annotated[
    int | None, typer.Option("--ray-workers", min=1, help=WORKERS_HELP, rich_help_panel=PANEL)
]
RayCpus = Annotated[int, typer.Option("--ray-cpus-per-worker", min=1, help=CPUS_HELP, rich_help_panel=PANEL)]


def command_pool(address: str | None, workers: int | None, cpus_per_worker: int) -> WorkerPool | None:
    """A command's pool on the cluster its options name (saying so on stderr); None without ``--ray``."""
    cluster = cluster_options(address, workers, cpus_per_worker)
    if cluster is None:
        return None
    from videogen.cluster.pool import start_pool  # here: it loads torch, which the CLI defers

    err.print(f"starting workers on the Ray cluster ({cluster.address})", highlight=False)
    pool = start_pool(cluster)
    err.print(
        f"{pool.size} workers: {', '.join(member.describe() for member in pool.members)}", highlight=False
    )
    return pool


def cluster_options(address: str | None, workers: int | None, cpus_per_worker: int) -> ClusterOptions | None:
    """The cluster the options name; None without ``--ray`` (then the other two must be left out)."""
    if address is None:
        if workers is not None:
            raise FieldError("ray_workers", workers, "only with --ray (local, auto or a cluster address)")
        if cpus_per_worker != 1:
            raise FieldError("ray_cpus_per_worker", cpus_per_worker, "only with --ray")
        return None
    return ClusterOptions(address, workers, cpus_per_worker)
