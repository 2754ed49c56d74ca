"""RBAC: Roles and ClusterRoles name their verbs and resources; `*` grants whatever exists tomorrow too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._framework import Case, CaseResource, Context, Rule
from policies.rules._k8s import as_list, kind_of, where

FIELDS = ("verbs", "resources", "apiGroups")


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if kind_of(resource_type) not in ("Role", "ClusterRole"):
        return []
    messages = []
    for index, rule in enumerate(as_list(inputs.get("rules"))):
        wild = [
            field
            for field in FIELDS
            if "*" in as_list(rule.get(field) if isinstance(rule, Mapping) else None)
        ]
        if wild:
            messages.append(f"{where(resource_type, inputs)} rules[{index}] uses * in {', '.join(wild)}")
    return messages


def _role(kind: str, rule: Mapping[str, Any]) -> CaseResource:
    return CaseResource(
        f"kubernetes:rbac.authorization.k8s.io/v1:{kind}",
        "reader",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": "reader", "namespace": "mcp-team"},
            "rules": [rule],
        },
    )


RULE = Rule(
    id="rbac-no-wildcards",
    description="Roles and ClusterRoles use no wildcard verbs, resources or API groups.",
    severity="high",
    remediation="List the exact verbs (get, list, watch...) and resources the workload needs.",
    validate_resource=validate,
    tags=("rbac",),
    cases=(
        Case(
            "explicit read",
            "pass",
            (_role("Role", {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}),),
        ),
        Case(
            "wildcard verbs",
            "violate",
            (_role("Role", {"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}),),
        ),
        Case(
            "wildcard resources",
            "violate",
            (_role("ClusterRole", {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}),),
        ),
    ),
)
