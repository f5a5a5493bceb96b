"""Prometheus metrics of the receiver and the worker, served as text on GET /metrics.

Each app (and each test) gets its own registry, so several apps in one process never clash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

# Deliveries rejected before the signature is known are counted under this event label, so that
# unauthenticated traffic cannot create label values.
UNVERIFIED_EVENT = "unverified"


class QueueDepthCollector(Collector):
    """Reads jobs per status from the store at scrape time."""

    def __init__(self, read_depth: Callable[[], dict[str, int]]) -> None:
        self.read_depth = read_depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("calora_jobs", "Jobs in the queue by status.", labels=["status"])
        try:
            depth = self.read_depth()
        except Exception:  # a scrape must not fail because the database is briefly away
            log.exception("could not read the queue depth for /metrics")
            depth = {}
        for status, count in sorted(depth.items()):
            gauge.add_metric([status], count)
        yield gauge


class AppMetrics:
    """The counters and histograms the receiver and the worker update."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deliveries = Counter(
            "calora_webhook_deliveries", "Webhook deliveries by event and outcome "
            "(queued, ignored, recorded, pong, duplicate, replay, unauthorized, too_large, malformed).",
            ["event", "outcome"], registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "calora_webhook_ack_seconds", "Time from request start to the webhook answer.",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.job_seconds = Histogram(
            "calora_job_duration_seconds", "Duration of one job attempt by outcome (done, retry, deferred "
            "until a rate limit resets, failed, lost_lease).", ["outcome"], buckets=JOB_BUCKETS, registry=self.registry,
        )
        self.superseded = Counter(
            "calora_jobs_superseded", "Queued jobs replaced by a newer push to the same pull request.",
            registry=self.registry,
        )

    def watch_queue(self, read_depth: Callable[[], dict[str, int]]) -> None:
        """Report jobs per status, read at each scrape."""
        self.registry.register(QueueDepthCollector(read_depth))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
