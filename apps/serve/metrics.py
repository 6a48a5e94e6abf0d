"""Prometheus metrics of one server instance (its own registry, so apps in one process never mix).

kgfusion_requests_total{route,method,status}, kgfusion_request_errors_total{route,status} (status >= 400),
kgfusion_request_seconds{route} (latency histogram), kgfusion_requests_in_flight, kgfusion_items_total{route},
kgfusion_batch_items{model} / kgfusion_batch_requests{model} (histograms of batch sizes),
kgfusion_batch_seconds{model}, kgfusion_queue_depth{model} (requests waiting for a batch),
kgfusion_model_info{app,name,version,backend} = 1 for every loaded model or graph.
"""
from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("kgfusion_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.errors = Counter("kgfusion_request_errors", "HTTP responses with status >= 400 by route and status",
                              ["route", "status"], registry=r)
        self.latency = Histogram("kgfusion_request_seconds", "Request latency in seconds by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("kgfusion_requests_in_flight", "Requests being served", registry=r)
        self.items = Counter("kgfusion_items", "Items (texts, notes, users, mentions) received by route",
                             ["route"], registry=r)
        self.batch_items = Histogram("kgfusion_batch_items", "Items per model batch", ["model"],
                                     buckets=SIZE_BUCKETS, registry=r)
        self.batch_requests = Histogram("kgfusion_batch_requests", "Requests per model batch", ["model"],
                                        buckets=SIZE_BUCKETS, registry=r)
        self.batch_seconds = Histogram("kgfusion_batch_seconds", "Model batch run time in seconds", ["model"],
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Gauge("kgfusion_queue_depth", "Requests waiting for a model batch", ["model"], registry=r)
        self.model = Gauge("kgfusion_model_info", "Loaded model bundles and graphs (value 1)",
                           ["app", "name", "version", "backend"], registry=r)

    # -- the MicroBatcher observer
    def observe_batch(self, name: str, items: int, requests: int, seconds: float) -> None:
        self.batch_items.labels(name).observe(items)
        self.batch_requests.labels(name).observe(requests)
        self.batch_seconds.labels(name).observe(seconds)

    def set_queue_depth(self, name: str, depth: int) -> None:
        self.queue.labels(name).set(depth)

    # -- requests
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        if status >= 400:
            self.errors.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def model_loaded(self, app: str, name: str, version: str, backend: str = "") -> None:
        self.model.labels(app, name, version, backend).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
