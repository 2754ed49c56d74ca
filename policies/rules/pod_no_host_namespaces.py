"""Pod Security `baseline`: no sharing of the node's network, PID or IPC namespaces."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import POD, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import pod_spec, where

FIELDS = ("hostNetwork", "hostPID", "hostIPC")


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    if spec is None:
        return []
    return [
        f"{where(resource_type, inputs)} sets {field}: true" for field in FIELDS if spec.get(field) is True
    ]


RULE = Rule(
    id="pod-no-host-namespaces",
    description="Pods do not use the node's network, PID or IPC namespace.",
    severity="critical",
    remediation="Remove hostNetwork, hostPID and hostIPC from the pod spec.",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("own namespaces", "pass", (deployment({f"{POD}.hostNetwork": False}),)),
        Case("host network", "violate", (deployment({f"{POD}.hostNetwork": True}),)),
        Case("host PID", "violate", (deployment({f"{POD}.hostPID": True}),)),
    ),
)
