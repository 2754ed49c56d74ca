"""The MCP router serves the series its contract names (docs/router.md, "Metrics"), which the alerts and the
dashboards are checked against: read from the real router's registry, in Prometheus' text format."""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mcpfleet.router.observe import Metrics, Record
from tests.monitoring.promql import ROUTER_CONTRACT, router_metrics


def exposition() -> dict[str, dict[str, set[str]]]:
    """Series name -> label name -> values, after one call, one refusal and one resolution, and one
    sample of every other series the router's registry holds (the fleet endpoint's listings and pins)."""
    metrics = Metrics()
    metrics.observe(
        Record(request_id="r1", client=None, server="alpha", outcome="ok"), 0.3, "tools/call", "search"
    )
    metrics.refusals.labels("alpha", "access").inc()
    metrics.endpoints.labels("alpha").set(2)
    # Every labelled series the router defines, whichever attribute holds it: a series missing from the
    # contract shows up here rather than in production only.
    for collector in vars(metrics).values():
        if isinstance(collector, (Counter, Gauge, Histogram)) and collector._labelnames:
            child = collector.labels(*("x" for _ in collector._labelnames))
            if isinstance(child, Histogram):
                child.observe(0.3)
            else:
                child.inc()
    served: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode("utf-8")):
        for sample in family.samples:
            labels = served.setdefault(sample.name, {})
            for label, value in sample.labels.items():
                labels.setdefault(label, set()).add(value)
    return served


def test_the_router_serves_exactly_the_series_of_its_contract() -> None:
    # prometheus_client adds a `_created` timestamp to counters and histograms; nothing here reads it.
    served = {name: set(labels) for name, labels in exposition().items() if not name.endswith("_created")}
    assert served == router_metrics()


def test_the_histogram_has_the_buckets_of_the_contract() -> None:
    contract = ROUTER_CONTRACT.read_text(encoding="utf-8")
    [listed] = re.findall(r"histogram, buckets ([\d.,\s]+)\.", contract)
    expected = {float(bound) for bound in listed.split(",")} | {float("inf")}
    served = exposition()["mcp_router_request_duration_seconds_bucket"]["le"]
    assert {float(bound) for bound in served} == expected
    # The alerts' 1 s threshold is a bucket boundary, so their p99 is above it exactly when more than 1% of
    # the calls took over 1 s: no interpolation inside a bucket decides an alert.
    assert 1.0 in expected
