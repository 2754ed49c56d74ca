"""Metric names in PromQL, and the metrics our exporters really serve: so a typo in a rule or a dashboard
query fails a test instead of showing an empty graph or an alert that never fires."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Names and help texts captured from a real HAProxy 2.6.12 exporter (see the file's header).
HAPROXY_METRICS_FILE = HERE / "haproxy-2.6.12-metrics.txt"
# kube-state-metrics docs/metrics/workload/deployment-metrics.md and pod-metrics.md.
KUBE_STATE_METRICS = {
    "kube_deployment_spec_replicas",
    "kube_deployment_status_replicas_available",
    "kube_pod_container_resource_limits",
    "kube_pod_container_status_restarts_total",
}
# cAdvisor docs/storage/prometheus.md; none of them is dropped by kube-prometheus-stack's
# kubelet.serviceMonitor.cAdvisorMetricRelabelings.
CADVISOR = {
    "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
}
# Prometheus itself: one series per pending or firing alert.
PROMETHEUS = {"ALERTS"}

_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()")


def haproxy_metrics() -> set[str]:
    names = set()
    for line in HAPROXY_METRICS_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("# HELP "):
            names.add(line.split()[2])
    return names


def known_metrics() -> set[str]:
    return haproxy_metrics() | KUBE_STATE_METRICS | CADVISOR | PROMETHEUS


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and label names left out)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _CLAUSE.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}
