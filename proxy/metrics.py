"""Prometheus metrics under wsproxy's names, so existing dashboards keep working."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    """One registry per proxy, so an in-process test can run several without name clashes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Counter(
            "wsproxy_connections", "The total number of processed connections", registry=r
        )
        self.active = Gauge(
            "wsproxy_active_connections", "The number of active connections", registry=r
        )
        self.bytes = Counter(
            "wsproxy_bytes", "The total number of proxied bytes", ["source"], registry=r
        )
        self.bytes_ws = self.bytes.labels(source="ws")
        self.bytes_tcp = self.bytes.labels(source="tcp")
        self.refusals = Counter(
            "wsproxy_refusals", "Upgrades refused, by reason", ["reason"], registry=r
        )
        self.connect_failures = Counter(
            "wsproxy_upstream_connect_failures", "Failed TCP connects to targets", registry=r
        )
        self.duration = Histogram(
            "wsproxy_connection_duration_seconds",
            "How long relays lasted",
            buckets=(0.01, 0.1, 1, 10, 60, 600, 3600, 86400),
            registry=r,
        )

    def track_buffered(self, total: Callable[[], float], largest: Callable[[], float]) -> None:
        """Report the relays' buffered bytes, measured when scraped (nothing to keep in sync):
        all of them (what MEMORY_BUDGET caps) and the one relay holding most."""
        Gauge(
            "wsproxy_buffered_bytes",
            "Bytes held in relay buffers (write buffers both ways, partial frames)",
            registry=self.registry,
        ).set_function(total)
        Gauge(
            "wsproxy_relay_buffered_bytes_max",
            "Bytes held by the relay holding most",
            registry=self.registry,
        ).set_function(largest)

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics from a daemon thread, as wsproxy serves it from a goroutine."""
        start_http_server(port, addr=host or "0.0.0.0", registry=self.registry)
