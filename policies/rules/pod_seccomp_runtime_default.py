"""Pod Security `restricted`: a seccomp profile of RuntimeDefault (or Localhost) on every container."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, POD, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import containers, dig, effective, pod_spec, where

ALLOWED = ("RuntimeDefault", "Localhost")


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    if spec is None:
        return []
    messages = []
    for c in containers(spec):
        profile = dig(effective(c, spec, "seccompProfile"), "type")
        if profile not in ALLOWED:
            shown = profile or "no profile"
            messages.append(
                f"{where(resource_type, inputs, c)} runs with seccomp {shown}, not RuntimeDefault"
            )
    return messages


RULE = Rule(
    id="pod-seccomp-runtime-default",
    description="Containers run under the RuntimeDefault seccomp profile (Pod Security restricted).",
    severity="medium",
    remediation="Set securityContext.seccompProfile.type: RuntimeDefault on the pod or every container.",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("RuntimeDefault", "pass", (deployment(),)),
        Case(
            "Unconfined",
            "violate",
            (deployment({f"{C0}.securityContext.seccompProfile": {"type": "Unconfined"}}),),
        ),
        Case(
            "no profile",
            "violate",
            (
                deployment(
                    {
                        f"{C0}.securityContext.seccompProfile": None,
                        f"{POD}.securityContext.seccompProfile": None,
                    }
                ),
            ),
        ),
    ),
)
