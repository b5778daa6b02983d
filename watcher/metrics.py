"""metrics: what the daemon counts, served to Prometheus when ``metrics.listen`` is set.

The counters are always kept (they are cheap); the HTTP endpoint is opt-in and binds where the
configuration says (``127.0.0.1:9464`` keeps it on the host).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from watcher.model import Event


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.lines_matched = Counter(
            "authz_watcher_lines_matched", "Lines that may hold a denial", registry=self.registry
        )
        self.bytes_read = Counter(
            "authz_watcher_bytes_read", "Bytes read from followed files", registry=self.registry
        )
        self.denials = Counter(
            "authz_watcher_denials",
            "Denial events emitted",
            ["source_kind", "decode_status"],
            registry=self.registry,
        )
        self.decode_calls = Counter(
            "authz_watcher_decode_calls", "STS decode calls", ["result"], registry=self.registry
        )
        self.decode_seconds = Histogram(
            "authz_watcher_decode_seconds", "STS decode call latency", registry=self.registry
        )
        self.alerts = Counter(
            "authz_watcher_alerts", "Alerts raised", ["rule"], registry=self.registry
        )
        self.sink_errors = Counter(
            "authz_watcher_sink_errors", "Failed sink writes", ["sink"], registry=self.registry
        )
        self.files_watched = Gauge(
            "authz_watcher_files_watched", "Files followed", registry=self.registry
        )
        self.bytes_behind = Gauge(
            "authz_watcher_bytes_behind", "Bytes appended but not read yet", registry=self.registry
        )

    def count_event(self, event: Event) -> None:
        if event["event"] == "authz_denial":
            self.denials.labels(event["source_kind"], event["decode_status"]).inc()

    def observe_decode_call(self, result: str, seconds: float) -> None:
        self.decode_calls.labels(result).inc()
        self.decode_seconds.observe(seconds)

    def serve(self, listen: str) -> Callable[[], None]:
        """Serve ``/metrics`` on ``host:port``; return the function that stops the server."""
        host, _, port = listen.rpartition(":")
        server, thread = start_http_server(int(port), addr=host.strip("[]"), registry=self.registry)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join()

        return stop
