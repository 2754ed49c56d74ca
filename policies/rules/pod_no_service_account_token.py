"""Pods do not mount a Kubernetes API token: MCP servers never need to call the API as themselves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import POD, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import pod_spec, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    if spec is None or spec.get("automountServiceAccountToken") is False:
        return []
    return [f"{where(resource_type, inputs)} mounts its service account token (automountServiceAccountToken)"]


RULE = Rule(
    id="pod-no-service-account-token",
    description="Pods do not automount a service account token.",
    severity="medium",
    remediation="Set automountServiceAccountToken: false on the pod spec (and on its ServiceAccount).",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("token not mounted", "pass", (deployment(),)),
        Case(
            "token mounted by default",
            "violate",
            (deployment({f"{POD}.automountServiceAccountToken": None}),),
        ),
    ),
)
