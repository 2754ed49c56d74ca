"""Pod Security `restricted`: allowPrivilegeEscalation must be false (it defaults to true)."""

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
    # Unset means allowed: setuid binaries could gain privileges, so only an explicit false passes.
    return [
        f"{where(resource_type, inputs, c)} does not set allowPrivilegeEscalation: false"
        for c in containers(spec)
        if dig(c, "securityContext", "allowPrivilegeEscalation") is not False
    ]


RULE = Rule(
    id="pod-no-privilege-escalation",
    description="Containers set allowPrivilegeEscalation: false (Pod Security restricted).",
    severity="high",
    remediation="Set securityContext.allowPrivilegeEscalation: false on every container.",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("escalation off", "pass", (deployment(),)),
        Case(
            "escalation unset",
            "violate",
            (deployment({f"{C0}.securityContext.allowPrivilegeEscalation": None}),),
        ),
        Case(
            "escalation on",
            "violate",
            (deployment({f"{C0}.securityContext.allowPrivilegeEscalation": True}),),
        ),
    ),
)
