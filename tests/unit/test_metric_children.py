"""The children kept for the metrics every metered call updates are the metric's own: what
they count is what ``/metrics`` exports."""

from prometheus_client import generate_latest

from proxy.server.metrics import Metrics


def test_counts_through_kept_children_are_exported_per_label_set() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.requests_by.of("/v1/chat/completions", "m", "200").inc()
    metrics.requests_by.of("/v1/messages", "m", "402").inc()
    metrics.spus_debited_by.of("m").inc(1_500)
    metrics.upstream_latency_by.of("m").observe(0.02)

    exported = generate_latest(metrics.registry).decode()

    assert 'spu_requests_total{model="m",route="/v1/chat/completions",status="200"} 3.0' in exported
    assert 'spu_requests_total{model="m",route="/v1/messages",status="402"} 1.0' in exported
    assert 'spu_debited_units_total{model="m"} 1500.0' in exported
    assert 'spu_upstream_latency_seconds_count{model="m"} 1.0' in exported
    assert metrics.requests_by.of("/v1/messages", "m", "402") is metrics.requests.labels(
        route="/v1/messages", model="m", status="402"
    )
