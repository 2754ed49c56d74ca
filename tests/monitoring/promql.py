"""Metric names in PromQL, and the metrics our exporters really serve: so a typo in a rule or a dashboard
query fails a test instead of showing an empty graph or an alert that never fires."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

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
# The MCP router's metrics, as its contract names them (docs/router.md, section "Metrics").
ROUTER_CONTRACT = REPO / "docs" / "router.md"
# Labels Prometheus adds to every series of a pod it scrapes through a PodMonitor.
TARGET_LABELS = {"namespace", "pod", "container", "endpoint", "job", "instance"}
# A series and its kind, as the contract writes them: "- `name{labels}`: counter", or within a sentence
# ("`name{labels}` gauge (...)", "..., `name{labels}` counter;").
_CONTRACT_METRIC = re.compile(r"`(mcp_router_\w+)\{([^}]*)\}`:? (counter|gauge|histogram)\b")

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


def router_metrics() -> dict[str, set[str]]:
    """Each series name the router serves (a histogram's `_bucket`, `_count` and `_sum`) and its labels:
    those of its "Metrics" section, and those the fleet endpoint's section adds."""
    text = ROUTER_CONTRACT.read_text(encoding="utf-8")
    start = text.index("### Metrics")
    section = text[start : text.index("\n### ", start + 1)]
    added = text.index("### Metrics and alerts added")
    section += text[added : text.find("\n## ", added) if "\n## " in text[added:] else len(text)]
    series: dict[str, set[str]] = {}
    for name, label_list, kind in _CONTRACT_METRIC.findall(section):
        labels = {label.strip() for label in label_list.split(",")}
        if kind == "histogram":
            series[f"{name}_bucket"] = labels | {"le"}
            series[f"{name}_count"] = labels
            series[f"{name}_sum"] = labels
        else:
            series[name] = labels
    return series


def known_metrics() -> set[str]:
    return haproxy_metrics() | KUBE_STATE_METRICS | CADVISOR | PROMETHEUS | set(router_metrics())


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*,?')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def unknown_router_labels(expr: str) -> set[str]:
    """Label names that `expr` selects or groups the router's metrics by, and that they do not carry: a
    typo there would leave a graph empty or an alert silent. Grouping clauses are checked only in
    expressions over router metrics alone (other metrics bring their own labels)."""
    series = router_metrics()
    unknown: set[str] = set()
    for metric, matchers in _SELECTOR.findall(expr):
        if metric in series:
            names = set(_MATCHER.findall(matchers))
            unknown |= names - series[metric] - TARGET_LABELS
    used = metric_names(expr)
    if used and used <= set(series):
        allowed = set().union(*(series[name] for name in used)) | TARGET_LABELS
        for clause in _GROUPING.findall(_STRING.sub('""', expr)):
            unknown |= {label.strip() for label in clause.split(",") if label.strip()} - allowed
    return unknown


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and label names left out)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _CLAUSE.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}
