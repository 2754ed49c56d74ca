"""EKS: the control plane ships audit (and authenticator) logs, so access is traceable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._framework import Case, CaseResource, Context, Rule
from policies.rules._k8s import as_list

CLUSTER = "aws:eks/cluster:Cluster"
REQUIRED = ("audit", "authenticator")


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if resource_type != CLUSTER:
        return []
    enabled = set(as_list(inputs.get("enabledClusterLogTypes")))
    missing = [log for log in REQUIRED if log not in enabled]
    if missing:
        return [f"EKS cluster {inputs.get('name', '?')} does not log {', '.join(missing)}"]
    return []


RULE = Rule(
    id="eks-audit-logs",
    description="EKS control-plane audit and authenticator logs are enabled.",
    severity="high",
    remediation="Include audit and authenticator in enabledClusterLogTypes (components/cluster/eks.py does).",
    validate_resource=validate,
    tags=("aws", "eks"),
    cases=(
        Case(
            "all logs",
            "pass",
            (CaseResource(CLUSTER, "c", {"enabledClusterLogTypes": ["api", "audit", "authenticator"]}),),
        ),
        Case("api only", "violate", (CaseResource(CLUSTER, "c", {"enabledClusterLogTypes": ["api"]}),)),
        Case("no logs", "violate", (CaseResource(CLUSTER, "c", {}),)),
    ),
)
