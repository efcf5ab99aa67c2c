"""Prometheus metrics, one registry per daemon (served at ``GET /metrics``)."""

from __future__ import annotations

import contextlib

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """The daemon's metrics; every series is labelled with ``connector``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        GCCollector(registry=r)  # python_gc_*: collections per generation (see heap.py)
        self.records_in = Counter(
            "connectord_records_in", "Records accepted from sources.", ["connector"], registry=r
        )
        self.records_out = Counter(
            "connectord_records_out",
            "Records the destination acknowledged.",
            ["connector"],
            registry=r,
        )
        self.records_rejected = Counter(
            "connectord_records_rejected",
            "Records sent to dead letters.",
            ["connector"],
            registry=r,
        )
        self.requests_rejected = Counter(
            "connectord_ingest_rejected",
            "Push requests answered with an error.",
            ["connector", "code"],
            registry=r,
        )
        self.delivery_retries = Counter(
            "connectord_delivery_retries",
            "Delivery attempts that failed transiently.",
            ["connector"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "connectord_queue_depth",
            "Undelivered records in the durable queue.",
            ["connector"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "connectord_dead_letters", "Records waiting in dead letters.", ["connector"], registry=r
        )
        self.delivery_latency = Histogram(
            "connectord_delivery_seconds",
            "Time for one destination call.",
            ["connector"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.run_duration = Histogram(
            "connectord_run_seconds",
            "Duration of pull runs.",
            ["connector", "status"],
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
            registry=r,
        )
        self.last_success = Gauge(
            "connectord_last_success_timestamp_seconds",
            "Unix time of the last successful run or delivery.",
            ["connector"],
            registry=r,
        )
        self.connector_up = Gauge(
            "connectord_connector_healthy",
            "1 when the connector's last delivery attempt succeeded.",
            ["connector"],
            registry=r,
        )
        self.delivery_request_rate = Gauge(
            "connectord_delivery_request_rate",
            "Destination requests per second allowed (adaptive: the rate learned from "
            "429s and rate-limit headers; 0 while no limit is known).",
            ["connector"],
            registry=r,
        )
        self.delivery_concurrency = Gauge(
            "connectord_delivery_concurrency",
            "Destination requests allowed in flight at once (adaptive: the current limit).",
            ["connector"],
            registry=r,
        )
        self.node_info = Gauge(
            "connectord_node_info",
            "1, labelled with this daemon's node name (`[daemon] node`): join it on "
            "`instance` to see every series of this /metrics by node.",
            ["node"],
            registry=r,
        )
        self.connector_owned = Gauge(
            "connectord_connector_owned",
            "1 while this daemon (node) holds the connector's lease: it drains the queue and "
            "runs the pulls; 0 on the other daemons sharing the state.",
            ["connector", "node"],
            registry=r,
        )
        self.plugin_events = Counter(
            "connectord_plugin_events",
            "What plugins count through PluginContext.count, by plugin and event.",
            ["connector", "plugin", "event"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def forget(self, connector: str) -> None:
        """Drop a removed connector's series."""
        for metric in (
            self.records_in,
            self.records_out,
            self.records_rejected,
            self.delivery_retries,
            self.queue_depth,
            self.dead_letters,
            self.delivery_latency,
            self.last_success,
            self.connector_up,
            self.delivery_concurrency,
            self.delivery_request_rate,
        ):
            with contextlib.suppress(KeyError):
                metric.remove(connector)
        for labels in list(self.connector_owned._metrics):
            if labels[0] == connector:
                self.connector_owned.remove(*labels)
