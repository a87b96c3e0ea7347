"""Prometheus metrics, one registry per app instance (tests build many apps in one process)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import State

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Metrics:
    """The service's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "whc_http_requests_total",
            "HTTP requests by route template and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.cache = Counter(
            "whc_cache_lookups_total",
            "cell lookups by where the answer came from (memory, shared, database, coalesced)",
            ["source"],
            registry=self.registry,
        )
        # label lookups take a lock and hash the labels: resolve the few children once
        self.cache_by_source = {
            s: self.cache.labels(s) for s in ("memory", "shared", "database", "coalesced")
        }
        self._requests_by: dict[tuple[str, int], Any] = {}
        self.db_seconds = Histogram(
            "whc_db_query_seconds",
            "database round trips for one cell, including connect",
            ["outcome"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    def count_request(self, route: str, status: int) -> None:
        child = self._requests_by.get((route, status))
        if child is None:
            child = self._requests_by[(route, status)] = self.requests.labels(route, str(status))
        child.inc()


class RequestMetrics:
    """Pure ASGI middleware counting responses by route template (not by raw path, which
    would let any client create unbounded label values).
    """

    def __init__(self, app: ASGIApp, state: State) -> None:
        # the lifespan puts the Metrics on `state`; the middleware exists before it runs
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or (
                "/static" if scope.get("path", "").startswith("/static/") else "unmatched"
            )
            metrics: Metrics = self.state.metrics
            metrics.count_request(name, status)


def observe_db(metrics: Metrics, started: float, outcome: str) -> None:
    metrics.db_seconds.labels(outcome).observe(time.perf_counter() - started)
