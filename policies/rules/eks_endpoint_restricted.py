"""EKS: the API endpoint is private, or public only to listed CIDRs (never the whole internet)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._framework import Case, CaseResource, Context, Rule
from policies.rules._k8s import as_list, dig

CLUSTER = "aws:eks/cluster:Cluster"


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if resource_type != CLUSTER:
        return []
    vpc = dig(inputs, "vpcConfig") or {}
    # The AWS default is public access from 0.0.0.0/0 when either field is left unset.
    if dig(vpc, "endpointPublicAccess") is False:
        return []
    cidrs = [str(c) for c in as_list(dig(vpc, "publicAccessCidrs"))]
    if not cidrs or "0.0.0.0/0" in cidrs:
        return [f"EKS cluster {inputs.get('name', '?')} serves its API endpoint to the whole internet"]
    return []


def _cluster(vpc: Mapping[str, Any]) -> CaseResource:
    return CaseResource(CLUSTER, "cluster", {"name": "mcpfleet-prod", "vpcConfig": dict(vpc)})


RULE = Rule(
    id="eks-endpoint-restricted",
    description="The EKS API endpoint is private or limited to named CIDRs.",
    severity="high",
    remediation="Set cluster.endpointPublicAccessCidrs in the stack file to your CIDRs ([]: private).",
    stack_fix="set `cluster.endpointPublicAccessCidrs` to your CIDRs (an empty list keeps the endpoint "
    "private)",
    validate_resource=validate,
    tags=("aws", "eks"),
    cases=(
        Case("private", "pass", (_cluster({"endpointPrivateAccess": True, "endpointPublicAccess": False}),)),
        Case(
            "public to one CIDR",
            "pass",
            (_cluster({"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}),),
        ),
        Case("public by default", "violate", (_cluster({}),)),
        Case(
            "public to everyone",
            "violate",
            (_cluster({"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}),),
        ),
    ),
)
