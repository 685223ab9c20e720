"""Prometheus metrics, one registry per app so several apps (tests, workers) never collide."""

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

Labelled = TypeVar("Labelled", Counter, Histogram)


class Children(Generic[Labelled]):
    """A labelled metric's children, kept by their label values, for the metrics every
    metered call updates.

    ``labels()`` checks its arguments, builds a tuple of strings and takes a lock on
    every call: about 4 µs, four times per call. A child, once made, stays the metric's
    (nothing here removes one), so a dict lookup finds it again.
    """

    def __init__(self, metric: Labelled) -> None:
        self._metric: Labelled = metric
        self._made: dict[tuple[str, ...], Labelled] = {}

    def of(self, *values: str) -> Labelled:
        child = self._made.get(values)
        if child is None:
            child = self._made[values] = self._metric.labels(*values)
        return child


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "spu_requests",
            "Requests by route, model and status.",
            ("route", "model", "status"),
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "spu_upstream_latency_seconds",
            "Time to the upstream's response headers.",
            ("model",),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.gateway_overhead = Histogram(
            "spu_gateway_overhead_seconds",
            "Time spent in the gateway itself (auth, estimate, hold) before forwarding.",
            ("route",),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.spus_debited = Counter(
            "spu_debited_units",
            "Ledger units debited (1 SPU = 1e6 units).",
            ("model",),
            registry=self.registry,
        )
        self.requests_by = Children(self.requests)
        self.upstream_latency_by = Children(self.upstream_latency)
        self.gateway_overhead_by = Children(self.gateway_overhead)
        self.spus_debited_by = Children(self.spus_debited)
        self.refusals = Counter(
            "spu_limit_refusals",
            "Calls refused by a limit: the org's credits or a key's budget (402), a key's rpm or"
            " tpm (429).",
            ("model", "limit_source"),
            registry=self.registry,
        )
        self.open_holds = Gauge(
            "spu_open_holds", "Metered calls in flight in this worker.", registry=self.registry
        )
        self.auto_recharges = Counter(
            "spu_auto_recharges",
            "Auto-recharges by outcome: started (a PaymentIntent confirmed), succeeded (credited),"
            " declined, requires_action, failed.",
            ("outcome",),
            registry=self.registry,
        )
        self.alert_deliveries = Counter(
            "spu_alert_deliveries",
            "Alert delivery attempts by event type and outcome: delivered, retrying, dead.",
            ("event", "outcome"),
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "spu_webhook_events",
            "Stripe webhook events by type and outcome.",
            ("type", "outcome"),
            registry=self.registry,
        )
