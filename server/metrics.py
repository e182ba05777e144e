"""Prometheus metrics. Labelled by route name, never by raw path (ids would explode the series)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

REQUESTS = Counter("branchline_http_requests_total", "HTTP requests answered",
                   ["route", "method", "status"])
LATENCY = Histogram("branchline_http_request_duration_seconds", "Time to answer a request",
                    ["route", "method"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
ERRORS = Counter("branchline_errors_total", "Problem responses by code", ["code"])


def observe(route: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(route, method, str(status)).inc()
    LATENCY.labels(route, method).observe(seconds)


def render() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
