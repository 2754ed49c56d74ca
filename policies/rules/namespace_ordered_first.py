"""Ordering: every namespaced object (and every chart installing into a namespace) is created after the
Namespace it goes into, or goes into one that exists before any deploy.

pulumi-kubernetes retries a create that fails on a missing namespace for about a minute only. An object not
ordered after its Namespace races it: on a busy first run (the Namespace waits behind a chart, or the API
server is slow) it fails, and the whole `pulumi up` with it. An object in a namespace nothing creates fails
every time. The order is read from the engine's dependencies, a parent's included (policies.rules._order).
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import dig, kind_of, name_of
from policies.rules._order import Order
from policies.rules._platform import CHART_TYPES, chart, chart_name, known, kube, of_kind

# Namespaces every cluster has before anything is deployed into it.
BUILT_IN = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


def _target(resource: Resource) -> tuple[str, str] | None:
    """(what it is, the namespace it goes into), for namespaced objects and charts; None otherwise."""
    if resource.type in CHART_TYPES:
        namespace = resource.inputs.get("namespace")
        where = f"chart {chart_name(resource)}"
    else:
        kind = kind_of(resource.type)
        if kind is None or kind == "Namespace":
            return None
        namespace = dig(resource.inputs, "metadata", "namespace")
        where = f"{kind} {namespace}/{name_of(resource.inputs)}"
    if not isinstance(namespace, str) or not known(namespace) or not namespace:
        return None  # the provider's default namespace, or one not known before apply
    return where, namespace


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    created: dict[str, list[Resource]] = {}
    for made in of_kind(resources, "Namespace"):
        created.setdefault(name_of(made.inputs), []).append(made)
    order = Order(resources)
    findings = []
    for resource in resources:
        target = _target(resource)
        if target is None:
            continue
        where, namespace = target
        if namespace in BUILT_IN:
            continue
        makers = created.get(namespace)
        if not makers:
            findings.append(
                Finding(
                    f"{where} goes into namespace {namespace}, which nothing in this stack creates: its"
                    " creation fails on every first run",
                    resource.urn,
                )
            )
        elif not order.after_any(resource.urn, [m.urn for m in makers]):
            findings.append(
                Finding(
                    f"{where} is not ordered after Namespace {namespace} ({makers[0].name}): it races it,"
                    " and pulumi-kubernetes retries a missing namespace for about a minute only; missing"
                    f" fix: depends_on the Namespace resource {makers[0].name} (or on a parent that has it)",
                    resource.urn,
                )
            )
    return findings


def _namespace(name: str) -> CaseResource:
    return kube("v1", "Namespace", name, {})


def _pod_monitor(depends_on: tuple[str, ...] = (), parent: str | None = None) -> CaseResource:
    monitor = kube(
        "monitoring.coreos.com/v1",
        "PodMonitor",
        "mcp-gateway",
        {"spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "mcp-gateway"}}}},
        namespace="mcp-gateway",
    )
    return CaseResource(monitor.type, monitor.name, monitor.inputs, parent, depends_on)


_MONITORING = chart("kube-prometheus-stack", "88.5.3")
_COMPONENT = "mcpfleet:index:Monitoring"


RULE = Rule(
    id="namespace-ordered-first",
    description="Every namespaced object and chart is created after the Namespace it goes into.",
    severity="high",
    remediation="Create the object with depends_on on its Namespace resource (or give it a parent "
    "component that depends on it); put it into a namespace the stack creates.",
    validate_stack=validate,
    tags=("deploy", "ordering"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case(
            "after its namespace",
            "pass",
            (
                _namespace("mcp-gateway"),
                _pod_monitor(("mcp-gateway-namespace", _MONITORING.name)),
                _MONITORING,
            ),
        ),
        Case(
            "after its namespace through its parent component",
            "pass",
            (
                _namespace("mcp-gateway"),
                CaseResource(_COMPONENT, "monitoring", {}, depends_on=("mcp-gateway-namespace",)),
                _pod_monitor(parent="monitoring"),
            ),
        ),
        Case(
            "after something that is after its namespace",
            "pass",
            (
                _namespace("mcp-gateway"),
                CaseResource(
                    "kubernetes:core/v1:ConfigMap",
                    "jwt",
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "jwt", "namespace": "mcp-gateway"},
                    },
                    depends_on=("mcp-gateway-namespace",),
                ),
                _pod_monitor(("jwt",)),
            ),
        ),
        Case(
            "a chart after its namespace, and into kube-system",
            "pass",
            (
                _namespace("external-secrets"),
                CaseResource(
                    CHART_TYPES[0],
                    "eso",
                    {"chart": "external-secrets", "namespace": "external-secrets"},
                    depends_on=("external-secrets-namespace",),
                ),
                CaseResource(
                    CHART_TYPES[0], "metrics", {"chart": "metrics-server", "namespace": "kube-system"}
                ),
            ),
        ),
        # Issue 11, item 10: the gateway's PodMonitor waited only for the monitoring chart.
        Case(
            "after the chart only",
            "violate",
            (_namespace("mcp-gateway"), _pod_monitor((_MONITORING.name,)), _MONITORING),
        ),
        Case(
            "a parent component without the namespace",
            "violate",
            (
                _namespace("mcp-gateway"),
                CaseResource(_COMPONENT, "monitoring", {}, depends_on=(_MONITORING.name,)),
                _MONITORING,
                _pod_monitor(parent="monitoring"),
            ),
        ),
        Case("a namespace nothing creates", "violate", (_pod_monitor(),)),
        Case(
            "a chart racing its namespace",
            "violate",
            (
                _namespace("external-secrets"),
                CaseResource(
                    CHART_TYPES[0], "eso", {"chart": "external-secrets", "namespace": "external-secrets"}
                ),
            ),
        ),
    ),
)
