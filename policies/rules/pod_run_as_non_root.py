"""Pod Security `restricted`: containers must run as a non-root user."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, POD, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import containers, effective, pod_spec, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    if spec is None:
        return []
    messages = []
    for container in containers(spec):
        if effective(container, spec, "runAsNonRoot") is not True:
            messages.append(f"{where(resource_type, inputs, container)} does not set runAsNonRoot: true")
        elif effective(container, spec, "runAsUser") == 0:
            messages.append(f"{where(resource_type, inputs, container)} runs as uid 0 (root)")
    return messages


RULE = Rule(
    id="pod-run-as-non-root",
    description="Containers run as a non-root user (Pod Security restricted).",
    severity="high",
    remediation="Set securityContext.runAsNonRoot: true and a non-zero runAsUser (catalog: runAsUser).",
    catalog_fix="set `runAsUser` to the image's non-root user id (not 0)",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("hardened workload", "pass", (deployment(),)),
        Case(
            "pod-level runAsNonRoot covers the container",
            "pass",
            (deployment({f"{C0}.securityContext.runAsNonRoot": None}),),
        ),
        Case(
            "runAsNonRoot missing everywhere",
            "violate",
            (
                deployment(
                    {f"{C0}.securityContext.runAsNonRoot": None, f"{POD}.securityContext.runAsNonRoot": None}
                ),
            ),
        ),
        Case("runs as uid 0", "violate", (deployment({f"{C0}.securityContext.runAsUser": 0}),)),
    ),
)
