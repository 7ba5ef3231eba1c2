"""Prometheus metrics: queue depth and jobs by status (read from the store at scrape time, so they
are right after a restart and across processes), and a histogram of generation seconds."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from videogen.server.store import STATUSES, JobStore

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _StoreCollector(Collector):
    def __init__(self, store: JobStore) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        """Names only, so registering does not query the database."""
        return list(self._families({}))

    def collect(self) -> Iterator[Metric]:
        return self._families(self.store.count_by_status())

    @staticmethod
    def _families(counts: dict[str, int]) -> Iterator[Metric]:
        yield GaugeMetricFamily("videogen_queue_depth", "Jobs waiting to run.", value=counts.get("queued", 0))
        jobs = GaugeMetricFamily("videogen_jobs", "Jobs in the store by status.", labels=["status"])
        for status in STATUSES:
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs


class Metrics:
    """One registry per app, so several apps (tests) in one process do not collide."""

    def __init__(self, store: JobStore) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(store))
        self.generation_seconds = Histogram(
            "videogen_generation_seconds",
            "Wall time of successful jobs, from start to files written.",
            ["model"],
            buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3600),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
