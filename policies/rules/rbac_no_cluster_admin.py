"""RBAC: nothing we deploy is bound to cluster-admin (or its namespace-wide twin, admin, cluster-wide)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._framework import Case, CaseResource, Context, Rule
from policies.rules._k8s import dig, kind_of, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    kind = kind_of(resource_type)
    if kind not in ("ClusterRoleBinding", "RoleBinding"):
        return []
    role = dig(inputs, "roleRef", "name")
    if dig(inputs, "roleRef", "kind") == "ClusterRole" and role == "cluster-admin":
        return [f"{where(resource_type, inputs)} grants cluster-admin"]
    return []


def _binding(kind: str, role: str) -> CaseResource:
    return CaseResource(
        f"kubernetes:rbac.authorization.k8s.io/v1:{kind}",
        "binding",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": "binding", "namespace": "mcp-team"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "alpha", "namespace": "mcp-team"}],
        },
    )


RULE = Rule(
    id="rbac-no-cluster-admin",
    description="No ClusterRoleBinding or RoleBinding grants cluster-admin.",
    severity="critical",
    remediation="Bind a Role with only the verbs and resources needed; for people, use EKS access entries.",
    validate_resource=validate,
    tags=("rbac",),
    cases=(
        Case("view role", "pass", (_binding("ClusterRoleBinding", "view"),)),
        Case("cluster-admin", "violate", (_binding("ClusterRoleBinding", "cluster-admin"),)),
        Case("cluster-admin in a namespace", "violate", (_binding("RoleBinding", "cluster-admin"),)),
    ),
)
