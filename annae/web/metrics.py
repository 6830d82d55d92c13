"""Prometheus metrics: requests, latency, decisions by type, hand-off routing time, queue length,
open WebSockets.

With several worker processes set ``PROMETHEUS_MULTIPROC_DIR`` *before* this module is imported
(``annae serve --workers N`` does); one scrape then sums every worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter(
    "annae_http_requests_total", "HTTP requests handled.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "annae_http_request_seconds",
    "HTTP request latency.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISIONS = Counter(
    "annae_decisions_total", "Bot decisions by type and reason.", ["type", "reason"]
)
QUESTION_MEMORY = Counter(
    "annae_question_memory_total",
    "Questions the answer engine ranked (miss) or took from its memory of repeated texts (hit).",
    ["result"],
)
ROUTING = Histogram(
    "annae_handoff_routing_seconds",
    "Time a customer's hand-off turn spends routing: team and hours (the agent pick follows).",
    buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
WEBSOCKETS = Gauge("annae_websockets", "Open WebSockets.", ["kind"], multiprocess_mode="livesum")


class _QueueCollector:
    """Reads the queue length from the database at scrape time (the same in every process)."""

    def __init__(self, read: Callable[[], int | None]) -> None:
        self.read = read

    def collect(self):
        value = self.read()
        family = GaugeMetricFamily("annae_queue_length", "Conversations waiting for an agent.")
        if value is not None:
            family.add_metric([], value)
        yield family


def observe_request(method: str, route: str, status: int, started: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(route).observe(time.perf_counter() - started)


def observe_question_memory(hits: int, misses: int) -> None:
    if hits:
        QUESTION_MEMORY.labels("hit").inc(hits)
    if misses:
        QUESTION_MEMORY.labels("miss").inc(misses)


def observe_decision(type_: str, reason: str | None) -> None:
    DECISIONS.labels(type_, reason or "").inc()


def render(queue_length: Callable[[], int | None]) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    registry = CollectorRegistry()
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(_QueueCollector(queue_length))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward:
    """Exposes the default registry's metrics inside another registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self):
        yield from self.source.collect()
