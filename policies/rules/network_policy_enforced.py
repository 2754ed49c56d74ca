"""Network: the cluster's network plugin enforces the NetworkPolicies the stack relies on.

A NetworkPolicy is only a request: the CNI plugin does the enforcing, or nothing does. On EKS the VPC CNI
enforces them only when its add-on runs the network policy agent (`enableNetworkPolicy: "true"` in its
configuration), off by default; without it default deny and every egress allowlist are no-ops (and in
ambient mode ztunnel does not hold egress either). kind's kindnet enforces them from kind 0.24 on.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._platform import (
    addon_configuration,
    addons_of,
    chart,
    chart_name,
    charts,
    cluster_name,
    eks_addon,
    eks_cluster,
    eks_clusters,
    kube,
    of_kind,
    truthy,
)

# Charts of network plugins that enforce NetworkPolicies themselves, in place of the VPC CNI's agent.
ENFORCING_CHARTS = ("tigera-operator", "calico", "cilium")


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    policies = of_kind(resources, "NetworkPolicy")
    if not policies:
        return []
    if any(chart_name(r) in ENFORCING_CHARTS for r in charts(resources)):
        return []
    clusters = eks_clusters(resources)
    if not clusters:
        if context.config.get("existingClusterEnforces", True):
            return []
        return [
            Finding(
                f"{len(policies)} NetworkPolicies, and this rule's config says the existing cluster's network"
                " plugin does not enforce them",
                policies[0].urn,
            )
        ]
    findings = []
    for cluster in clusters:
        cni = addons_of(resources, cluster).get("vpc-cni")
        if cni is not None and truthy(addon_configuration(cni).get("enableNetworkPolicy")):
            continue
        how = (
            "its vpc-cni add-on runs without the network policy agent"
            if cni is not None
            else "it keeps the self-managed VPC CNI, network policy agent off"
        )
        findings.append(
            Finding(
                f"{len(policies)} NetworkPolicies (default deny, every egress allowlist) would not be"
                f" enforced on EKS cluster {cluster_name(cluster)}: {how}; missing fix: the vpc-cni add-on"
                ' configured with {"enableNetworkPolicy": "true"}',
                (cni or cluster).urn,
            )
        )
    return findings


_DENY = kube(
    "networking.k8s.io/v1",
    "NetworkPolicy",
    "default-deny",
    {"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
    namespace="mcp-team",
)


def _cni(enabled: object) -> CaseResource:
    return eks_addon("vpc-cni", {"enableNetworkPolicy": enabled})


RULE = Rule(
    id="network-policy-enforced",
    description="NetworkPolicies run on a network plugin that enforces them (on EKS: the vpc-cni add-on "
    "with its network policy agent on).",
    severity="critical",
    remediation='Configure the vpc-cni add-on with {"enableNetworkPolicy": "true"} '
    "(components/cluster/eks.py does), or run a plugin that enforces them; on an existing cluster whose "
    "plugin does not, set this rule's existingClusterEnforces to false and install one.",
    validate_stack=validate,
    config_schema={
        "existingClusterEnforces": {
            "type": "boolean",
            "default": True,
            "description": "The network plugin of an existing cluster enforces NetworkPolicies (kind 0.24+: "
            "kindnet does).",
        }
    },
    tags=("network", "deploy"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case("agent on", "pass", (eks_cluster(), _cni("true"), _DENY)),
        Case("agent on, as a boolean", "pass", (eks_cluster(), _cni(True), _DENY)),
        Case("Cilium instead", "pass", (eks_cluster(), chart("cilium", "1.18.0"), _DENY)),
        Case("no NetworkPolicy", "pass", (eks_cluster(), eks_addon("vpc-cni"))),
        Case("kind (kindnet enforces)", "pass", (_DENY,)),
        Case("add-on with defaults", "violate", (eks_cluster(), eks_addon("vpc-cni"), _DENY)),
        Case("agent off", "violate", (eks_cluster(), _cni("false"), _DENY)),
        Case("no vpc-cni add-on", "violate", (eks_cluster(), _DENY)),
    ),
)
