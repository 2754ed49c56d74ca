"""Pod Security `restricted`: no privileged containers."""

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
    return [
        f"{where(resource_type, inputs, c)} is privileged: it has every capability of the node"
        for c in containers(spec)
        if dig(c, "securityContext", "privileged") is True
    ]


RULE = Rule(
    id="pod-no-privileged",
    description="No container runs privileged (Pod Security restricted).",
    severity="critical",
    remediation="Remove securityContext.privileged (or set it to false); grant no capabilities instead.",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("not privileged", "pass", (deployment(),)),
        Case("privileged container", "violate", (deployment({f"{C0}.securityContext.privileged": True}),)),
    ),
)
