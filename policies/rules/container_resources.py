"""Every container declares CPU and memory requests and limits: the scheduler and the node need them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import containers, dig, pod_spec, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    if spec is None:
        return []
    messages = []
    for c in containers(spec):
        missing = [
            f"{kind}.{resource}"
            for kind in ("requests", "limits")
            for resource in ("cpu", "memory")
            if dig(c, "resources", kind, resource) in (None, "")
        ]
        if missing:
            messages.append(f"{where(resource_type, inputs, c)} sets no {', '.join(missing)}")
    return messages


RULE = Rule(
    id="container-resources",
    description="Containers set CPU and memory requests and limits.",
    severity="medium",
    remediation="Set resources.requests and resources.limits (cpu and memory) in the catalog entry.",
    catalog_fix="set `resources.requests` and `resources.limits` (cpu and memory), or "
    "`environments.{env}.resources` for this environment only",
    validate_resource=validate,
    tags=("resources",),
    cases=(
        Case("requests and limits", "pass", (deployment(),)),
        Case("no limits", "violate", (deployment({f"{C0}.resources.limits": None}),)),
        Case("no memory request", "violate", (deployment({f"{C0}.resources.requests.memory": None}),)),
    ),
)
