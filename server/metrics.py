"""Prometheus metrics. Labelled by route name, never by raw path (ids would explode the series)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("branchline_http_requests_total", "HTTP requests answered",
                   ["route", "method", "status"])
LATENCY = Histogram("branchline_http_request_duration_seconds", "Time to answer a request",
                    ["route", "method"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
ERRORS = Counter("branchline_errors_total", "Problem responses by code", ["code"])


# Labelled children, looked up once: `labels()` takes a lock and builds a key on every call.
_children: dict[tuple[str, str, int], tuple] = {}


def observe(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method, status)
    children = _children.get(key)
    if children is None:
        children = _children[key] = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route, method))
    children[0].inc()
    children[1].observe(seconds)


def render() -> tuple[bytes, str]:
    """This process's samples, or every API process's when they share a PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
