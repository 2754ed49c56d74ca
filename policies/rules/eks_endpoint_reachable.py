"""EKS: the deploy can reach the API endpoint of the cluster it deploys into.

The same `pulumi up` that creates the cluster creates Kubernetes resources in it, from wherever the deploy
runs: the deploy workflow's runners, outside the VPC the stack creates. A private endpoint answers only
inside that VPC, so every one of those resources would time out. The endpoint must be public, limited to
the runners' addresses (eks-endpoint-restricted refuses the whole internet), unless the policy config says
the deploy runs from a network that reaches the VPC (`deployReachesPrivateEndpoint`).
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._framework import Case, Context, Finding, Resource, Rule
from policies.rules._k8s import dig
from policies.rules._platform import chart, cluster_name, eks_cluster, eks_clusters, registers_kubernetes


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    if context.config.get("deployReachesPrivateEndpoint") or not registers_kubernetes(resources):
        return []
    findings = []
    for cluster in eks_clusters(resources):
        vpc = dig(cluster.inputs, "vpcConfig") or {}
        # AWS turns public access on when the field is absent.
        public = vpc.get("endpointPublicAccess", True) is not False
        if public:
            continue
        findings.append(
            Finding(
                f"EKS cluster {cluster_name(cluster)} serves its API only inside its VPC, and this stack"
                " deploys Kubernetes resources through it from the deploy runners, outside that VPC: they"
                " would time out; missing fix: the runners' addresses in cluster.endpointPublicAccessCidrs",
                cluster.urn,
            )
        )
    return findings


def _private() -> dict[str, object]:
    return {"endpointPrivateAccess": True, "endpointPublicAccess": False}


_K8S = chart("cert-manager", "v1.20.2")

RULE = Rule(
    id="eks-endpoint-reachable",
    description="The deploy can reach the API endpoint of an EKS cluster the stack deploys Kubernetes "
    "resources into.",
    severity="critical",
    remediation="List the public addresses your deploy runners (and operators) come from in the stack's "
    "cluster.endpointPublicAccessCidrs; if the deploy runs from a network routed into the VPC, say so with "
    "this rule's deployReachesPrivateEndpoint property in policies/config/<env>.json.",
    validate_stack=validate,
    config_schema={
        "deployReachesPrivateEndpoint": {
            "type": "boolean",
            "default": False,
            "description": "The deploy runs inside the cluster's VPC or a network routed into it.",
        }
    },
    tags=("aws", "eks", "deploy"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case("public to the runners", "pass", (eks_cluster(), _K8S)),
        Case("private, but nothing deployed into it", "pass", (eks_cluster(vpcConfig=_private()),)),
        Case("private, deploying into it", "violate", (eks_cluster(vpcConfig=_private()), _K8S)),
    ),
)
