"""Pod Security `baseline`: no hostPort (it bypasses Services and NetworkPolicies on the node)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import as_list, containers, dig, pod_spec, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    if spec is None:
        return []
    return [
        f"{where(resource_type, inputs, c)} binds host port {dig(p, 'hostPort')}"
        for c in containers(spec)
        for p in as_list(c.get("ports"))
        if dig(p, "hostPort") not in (None, 0)
    ]


RULE = Rule(
    id="pod-no-host-ports",
    description="Containers bind no host port.",
    severity="high",
    remediation="Remove ports[].hostPort; expose the container through its Service instead.",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("container port only", "pass", (deployment(),)),
        Case(
            "host port",
            "violate",
            (deployment({f"{C0}.ports": [{"name": "mcp", "containerPort": 8080, "hostPort": 8080}]}),),
        ),
    ),
)
