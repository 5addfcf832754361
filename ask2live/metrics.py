"""Prometheus metrics: one registry per server process, built in app.py and passed in.

With several processes, each exposes its own at /metrics; the dashboard sums them.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

# From 100 µs (an in-memory broadcast to a handful of sockets) to 10 s (a room stuck
# behind a saturated disk, the old design's failure): fine enough at both ends to read
# p50 and p99 off the same histogram.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)
FANOUT_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500)
COALESCE_BUCKETS = (1, 2, 3, 5, 10, 25, 100, 1000)
WELCOME_BUCKETS = (1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open fds
        self.message_latency = Histogram(
            "ask2live_message_latency_seconds",
            "Chat message latency: server receipt to written to every local socket (path=local), "
            "or append on another process to local delivery (path=remote).",
            ["path"], buckets=LATENCY_BUCKETS, registry=r)
        self.events = Counter("ask2live_events_total", "Room events appended, by type.", ["type"], registry=r)
        self.fanout = Histogram("ask2live_broadcast_fanout", "Local sockets each room event was written to.",
                                buckets=FANOUT_BUCKETS, registry=r)
        self.frames = Counter("ask2live_frames_sent_total", "Event frames written to sockets.", registry=r)
        self.coalesced = Histogram("ask2live_frames_per_send",
                                   "Event frames a delivery wrote to each socket in one send (several when events "
                                   "arrive together).", buckets=COALESCE_BUCKETS, registry=r)
        self.join_seconds = Histogram("ask2live_join_seconds",
                                      "Server time to admit a room socket: upgrade accepted to welcome written.",
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.welcome_bytes = Histogram("ask2live_welcome_bytes", "Size of each welcome frame.",
                                       buckets=WELCOME_BUCKETS, registry=r)
        self.audience = Gauge("ask2live_room_audience", "Connections in a room (every process), as last told.",
                              ["session"], registry=r)
        self.connections = Gauge("ask2live_connections", "Open room WebSockets on this process.", registry=r)
        self.rooms = Gauge("ask2live_rooms", "Rooms with at least one socket on this process.", registry=r)
        self.slow_drops = Counter("ask2live_slow_client_drops_total",
                                  "Clients dropped because their outgoing buffer was full or stuck.", registry=r)
        self.rate_limited = Counter("ask2live_rate_limited_total", "Frames refused by the per-connection rate limit.",
                                    registry=r)
        self.history = Counter("ask2live_history_served_total",
                               "Welcome history or resume catch-ups served, by where they came from.",
                               ["source"], registry=r)
        self.flush_batch = Histogram("ask2live_writebehind_batch_size", "Events per write-behind batch.",
                                     buckets=BATCH_BUCKETS, registry=r)
        self.flush_seconds = Histogram("ask2live_writebehind_flush_seconds", "Time to insert and acknowledge a batch.",
                                       buckets=DB_BUCKETS, registry=r)
        self.flush_failures = Counter("ask2live_writebehind_failures_total", "Write-behind batches that failed.",
                                      registry=r)
        self.backlog = Gauge("ask2live_writebehind_backlog", "Events this process holds that the cold store lacks.",
                             registry=r)
        self.oldest_unflushed = Gauge("ask2live_writebehind_oldest_unflushed_seconds",
                                      "Age of the oldest event this process holds that the cold store lacks.",
                                      registry=r)
        self.store_seconds = Histogram("ask2live_store_interaction_seconds", "Cold-store transactions, by name.",
                                       ["name"], buckets=DB_BUCKETS, registry=r)
        self.http_seconds = Histogram("ask2live_http_request_duration_seconds", "REST requests, by route.",
                                      ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.up = Gauge("ask2live_dependency_up", "1 if the last check of a dependency succeeded.",
                        ["dependency"], registry=r)

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_seconds.labels(route, method, f"{status // 100}xx").observe(seconds)

    def observe_store(self, name: str, seconds: float) -> None:
        self.store_seconds.labels(name).observe(seconds)

    def observe_flush(self, size: int, seconds: float) -> None:
        self.flush_batch.observe(size)
        self.flush_seconds.observe(seconds)

    def track(self, gauge: Gauge, fn: Callable[[], float]) -> None:
        gauge.set_function(fn)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
