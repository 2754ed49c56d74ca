"""Network: only the gateway is reachable from outside the cluster; servers are reached through it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import SERVICE, k8s
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import dig, kind_of, name_of, namespace_of, where

DEFAULT_ALLOWED = ["mcp-gateway/mcp-gateway"]


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if kind_of(resource_type) != "Service":
        return []
    kind = dig(inputs, "spec", "type")
    if kind not in ("LoadBalancer", "NodePort"):
        return []
    allowed = [str(a) for a in context.config.get("allowedServices", DEFAULT_ALLOWED)]
    if f"{namespace_of(inputs)}/{name_of(inputs)}" in allowed:
        return []
    return [f"{where(resource_type, inputs)} is of type {kind}: it is reachable from outside the cluster"]


_GATEWAY = {"metadata": {"name": "mcp-gateway", "namespace": "mcp-gateway"}, "spec": {"type": "LoadBalancer"}}

RULE = Rule(
    id="service-no-external-exposure",
    description="No LoadBalancer or NodePort Service except the gateway's.",
    severity="high",
    remediation="Use a ClusterIP Service and route through the gateway (/servers/<name>/mcp).",
    validate_resource=validate,
    config_schema={
        "allowedServices": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_ALLOWED,
            "description": "namespace/name of the Services that may be LoadBalancer or NodePort.",
        }
    },
    tags=("network",),
    cases=(
        Case("ClusterIP", "pass", (k8s(SERVICE, "alpha", {"spec": {"type": "ClusterIP"}}),)),
        Case("gateway LoadBalancer", "pass", (k8s(SERVICE, "gateway", _GATEWAY),)),
        Case("server LoadBalancer", "violate", (k8s(SERVICE, "alpha", {"spec": {"type": "LoadBalancer"}}),)),
        Case("server NodePort", "violate", (k8s(SERVICE, "alpha", {"spec": {"type": "NodePort"}}),)),
        Case(
            "gateway name in another namespace",
            "violate",
            (
                k8s(
                    SERVICE,
                    "gateway",
                    {
                        "metadata": {"name": "mcp-gateway", "namespace": "mcp-team"},
                        "spec": {"type": "NodePort"},
                    },
                ),
            ),
        ),
    ),
)
