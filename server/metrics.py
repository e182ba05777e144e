"""Prometheus metrics. Labelled by route name, never by raw path (ids would explode the series)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
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

# WeChat subscription messages (server/notifications/sender.py), by event. `reason` of a failure:
# rejected (an errcode such as 47003), unavailable (no answer after the retries), uncertain (a timeout
# that may have delivered it: not sent again), interrupted (its sender stopped mid-send).
MESSAGES_SENT = Counter("branchline_notifications_sent_total", "Subscription messages WeChat accepted", ["event"])
MESSAGES_FAILED = Counter("branchline_notifications_failed_total", "Subscription messages given up",
                          ["event", "reason"])
MESSAGES_RETRIED = Counter("branchline_notifications_retried_total",
                           "Subscription message attempts made again (-1, timeouts, 5xx)", ["event"])
# Set by the process holding the sender's lease (the others report 0): the largest is the backlog.
OUTBOX_BACKLOG = Gauge("branchline_notifications_backlog", "Deliveries waiting to be sent to WeChat",
                       multiprocess_mode="livemax")


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
