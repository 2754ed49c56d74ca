"""EKS: someone can administer the cluster, or nothing the stack deploys into it gets through.

With `bootstrapClusterCreatorAdminPermissions` off, the identity that creates the cluster gets no access;
only access entries grant it (`authenticationMode` API or API_AND_CONFIG_MAP). Without an entry holding
AmazonEKSClusterAdminPolicy on the whole cluster, every Kubernetes resource of the same `pulumi up`,
charts included (they create cluster-scoped objects), is refused as unauthorized.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import dig
from policies.rules._platform import (
    ACCESS_ENTRY,
    ACCESS_POLICY,
    CLUSTER_ADMIN_POLICY,
    UNKNOWN,
    belongs_to,
    cluster_name,
    eks_cluster,
    eks_clusters,
    known,
    of_type,
)


def _same_principal(entry: Resource, grant: Resource) -> bool:
    left, right = entry.inputs.get("principalArn"), grant.inputs.get("principalArn")
    return not known(left) or not known(right) or left == right


def admins(cluster: Resource, resources: Sequence[Resource]) -> list[str]:
    """The principals holding cluster admin on cluster through an access entry and its policy."""
    clusters = eks_clusters(resources)
    entries = [e for e in of_type(resources, ACCESS_ENTRY) if belongs_to(e, cluster, clusters)]
    grants = [
        g
        for g in of_type(resources, ACCESS_POLICY)
        if belongs_to(g, cluster, clusters)
        and str(g.inputs.get("policyArn", "")).endswith(f"/{CLUSTER_ADMIN_POLICY}")
        and dig(g.inputs, "accessScope", "type") == "cluster"
    ]
    return [
        str(entry.inputs.get("principalArn"))
        for entry in entries
        if entry.inputs.get("type", "STANDARD") == "STANDARD"
        and any(_same_principal(entry, g) for g in grants)
    ]


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    findings = []
    for cluster in eks_clusters(resources):
        access = dig(cluster.inputs, "accessConfig") or {}
        # AWS's default, when the field is absent, is to make the creator an admin.
        if access.get("bootstrapClusterCreatorAdminPermissions", True) is not False:
            continue
        mode = access.get("authenticationMode", "CONFIG_MAP")
        if mode == "CONFIG_MAP":
            findings.append(
                Finding(
                    f"EKS cluster {cluster_name(cluster)} gives its creator no access and authenticates by"
                    " the aws-auth ConfigMap only, which nothing can write before someone has access: nobody"
                    " can reach its Kubernetes API; missing fix: authenticationMode API with an admin"
                    " access entry",
                    cluster.urn,
                )
            )
        elif not admins(cluster, resources):
            findings.append(
                Finding(
                    f"EKS cluster {cluster_name(cluster)} grants cluster admin to no IAM principal (creator"
                    f" admin off, no access entry with {CLUSTER_ADMIN_POLICY}): every Kubernetes resource of"
                    " this deploy would be refused; missing fix: an admin access entry"
                    " (cluster.adminPrincipalArns)",
                    cluster.urn,
                )
            )
    return findings


_ADMIN = "arn:aws:iam::210987654321:role/platform-admin"


def _entry(principal: str = _ADMIN) -> CaseResource:
    inputs = {"clusterName": UNKNOWN, "principalArn": principal, "type": "STANDARD"}
    return CaseResource(ACCESS_ENTRY, f"entry-{principal.rsplit('/', 1)[-1]}", inputs)


def _grant(
    principal: str = _ADMIN, policy: str = CLUSTER_ADMIN_POLICY, scope: str = "cluster"
) -> CaseResource:
    inputs = {
        "clusterName": UNKNOWN,
        "principalArn": principal,
        "policyArn": f"arn:aws:eks::aws:cluster-access-policy/{policy}",
        "accessScope": {"type": scope},
    }
    return CaseResource(ACCESS_POLICY, f"grant-{principal.rsplit('/', 1)[-1]}-{policy}", inputs)


RULE = Rule(
    id="eks-admin-access",
    description="An EKS cluster the stack creates grants cluster admin to someone: its creator, or an "
    "access entry with AmazonEKSClusterAdminPolicy.",
    severity="critical",
    remediation="List the platform team's IAM roles in the stack's cluster.adminPrincipalArns (each gets an "
    "access entry with AmazonEKSClusterAdminPolicy; components/cluster/eks.py) and run `pulumi up` as one.",
    validate_stack=validate,
    tags=("aws", "eks", "deploy"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case("an admin entry", "pass", (eks_cluster(), _entry(), _grant())),
        Case(
            "creator stays admin (AWS's default)",
            "pass",
            (eks_cluster(accessConfig={"authenticationMode": "API"}),),
        ),
        Case("no entry at all", "violate", (eks_cluster(),)),
        Case("an entry without a policy", "violate", (eks_cluster(), _entry())),
        Case(
            "a namespace-scoped policy only",
            "violate",
            (eks_cluster(), _entry(), _grant(policy="AmazonEKSAdminPolicy", scope="namespace")),
        ),
        Case(
            "the policy is another principal's",
            "violate",
            (eks_cluster(), _entry(), _grant("arn:aws:iam::210987654321:role/someone-else")),
        ),
        Case(
            "aws-auth only, creator off",
            "violate",
            (
                eks_cluster(
                    accessConfig={
                        "authenticationMode": "CONFIG_MAP",
                        "bootstrapClusterCreatorAdminPermissions": False,
                    }
                ),
            ),
        ),
    ),
)
