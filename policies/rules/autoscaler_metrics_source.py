"""Autoscaling: HorizontalPodAutoscalers that scale on CPU or memory have a metrics source to read.

Resource metrics come from the `metrics.k8s.io` API, which only metrics-server (or an adapter in its
place) serves. Neither EKS nor kind runs one by default: without it every such autoscaler reports
`<unknown>` and never scales, silently.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import as_list, dig, name_of, namespace_of
from policies.rules._platform import (
    addons_of,
    chart,
    chart_name,
    charts,
    eks_addon,
    eks_cluster,
    eks_clusters,
    kube,
    of_kind,
)

METRICS_API_SERVICE = "v1beta1.metrics.k8s.io"
# Charts that serve the resource metrics API (metrics-server itself; prometheus-adapter can stand in).
METRICS_CHARTS = ("metrics-server", "prometheus-adapter")
RESOURCE_METRICS = ("Resource", "ContainerResource")


def needs_resource_metrics(autoscaler: Resource) -> bool:
    metrics = as_list(dig(autoscaler.inputs, "spec", "metrics"))
    # No metrics at all: the controller's default, 80% CPU, is a resource metric too.
    return not metrics or any(dig(m, "type") in RESOURCE_METRICS for m in metrics)


def metrics_source(resources: Sequence[Resource], context: Context) -> str | None:
    """What serves resource metrics in this stack, or None."""
    for release in charts(resources):
        if chart_name(release) in METRICS_CHARTS:
            return f"chart {chart_name(release)}"
    for service in of_kind(resources, "APIService"):
        if name_of(service.inputs) == METRICS_API_SERVICE:
            return f"APIService {METRICS_API_SERVICE}"
    clusters = eks_clusters(resources)
    for cluster in clusters:
        if "metrics-server" in addons_of(resources, cluster):
            return "EKS add-on metrics-server"
    if not clusters and context.config.get("existingClusterHasMetricsServer"):
        return "the existing cluster's own"
    return None


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    scaling = [a for a in of_kind(resources, "HorizontalPodAutoscaler") if needs_resource_metrics(a)]
    if not scaling or metrics_source(resources, context) is not None:
        return []
    first = scaling[0]
    return [
        Finding(
            f"{len(scaling)} HorizontalPodAutoscaler(s) scale on CPU or memory (first"
            f" {namespace_of(first.inputs)}/{name_of(first.inputs)}) and nothing in this stack serves the"
            " resource metrics API: they never scale; missing fix: metrics-server (the EKS add-on on eks,"
            " the pinned chart on an existing cluster)",
            first.urn,
        )
    ]


def _autoscaler(metric_type: str | None = "Resource") -> CaseResource:
    metrics = [] if metric_type is None else [{"type": metric_type, metric_type.lower(): {}}]
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "alpha"},
        "minReplicas": 1,
        "maxReplicas": 3,
        "metrics": metrics,
    }
    return kube("autoscaling/v2", "HorizontalPodAutoscaler", "alpha", {"spec": spec}, namespace="mcp-team")


RULE = Rule(
    id="autoscaler-metrics-source",
    description="Autoscalers scaling on CPU or memory have metrics-server (or another resource metrics "
    "source) to read.",
    severity="high",
    remediation="Keep metrics-server: the EKS add-on (components/cluster/eks.py) on eks, the pinned chart "
    "(components/addons.py) on an existing cluster; or set this rule's existingClusterHasMetricsServer when "
    "your existing cluster runs one.",
    validate_stack=validate,
    config_schema={
        "existingClusterHasMetricsServer": {
            "type": "boolean",
            "default": False,
            "description": "An existing cluster (not created by the stack) already serves metrics.k8s.io.",
        }
    },
    tags=("autoscaling", "deploy"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case("EKS add-on", "pass", (eks_cluster(), eks_addon("metrics-server"), _autoscaler())),
        Case("metrics-server chart", "pass", (chart("metrics-server", "3.13.1"), _autoscaler())),
        Case("no autoscaler", "pass", (eks_cluster(),)),
        Case("scales on an external metric only", "pass", (eks_cluster(), _autoscaler("External"))),
        Case("EKS without metrics-server", "violate", (eks_cluster(), eks_addon("coredns"), _autoscaler())),
        Case("existing cluster without one", "violate", (_autoscaler(None),)),
    ),
)
