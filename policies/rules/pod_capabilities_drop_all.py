"""Pod Security `restricted`: drop ALL capabilities and add none (servers listen on
unprivileged ports, so not even NET_BIND_SERVICE is needed)."""

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
    messages = []
    for c in containers(spec):
        dropped = [str(x).upper() for x in as_list(dig(c, "securityContext", "capabilities", "drop"))]
        added = [str(x) for x in as_list(dig(c, "securityContext", "capabilities", "add"))]
        if "ALL" not in dropped:
            messages.append(f"{where(resource_type, inputs, c)} does not drop ALL capabilities")
        if added:
            messages.append(f"{where(resource_type, inputs, c)} adds capabilities {', '.join(added)}")
    return messages


RULE = Rule(
    id="pod-capabilities-drop-all",
    description="Containers drop ALL Linux capabilities and add none.",
    severity="high",
    remediation="Set securityContext.capabilities: {drop: [ALL]} and remove capabilities.add.",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("drops ALL", "pass", (deployment(),)),
        Case("drops nothing", "violate", (deployment({f"{C0}.securityContext.capabilities": None}),)),
        Case(
            "adds NET_ADMIN",
            "violate",
            (deployment({f"{C0}.securityContext.capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}),),
        ),
    ),
)
