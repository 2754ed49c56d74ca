"""RBAC: an MCP server's Kubernetes access is read-only, never reaches Secrets, and is bound to its own
ServiceAccount alone.

A server reads the Kubernetes API only when its catalog entry declares `kubernetesAccess`: the program then
renders a ClusterRole of get, list and watch on the resources named there and binds it to the server's
ServiceAccount. Whatever renders a server's RBAC (labelled `mcpfleet.io/server`), this holds: no verb that
changes anything, no Secret, no subresource that runs commands in pods or nodes or mints tokens, no
built-in role (view, edit, admin, cluster-admin) and no other subject. Charts' own RBAC is theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcpfleet.catalog.models import FORBIDDEN_KUBERNETES_RESOURCES, KUBERNETES_READ_VERBS
from policies.rules._framework import Case, CaseResource, Context, Rule
from policies.rules._k8s import as_list, as_map, dig, kind_of, where

SERVER_LABEL = "mcpfleet.io/server"
RBAC = "rbac.authorization.k8s.io/v1"
# The role the program renders for a server (components/manifests/rbac.py).
ROLE_PREFIX = "mcp-server-"


def _role_findings(resource_type: str, inputs: Mapping[str, Any]) -> list[str]:
    messages = []
    for index, rule in enumerate(as_list(inputs.get("rules"))):
        rule = as_map(rule)
        verbs = [str(v) for v in as_list(rule.get("verbs"))]
        extra = [v for v in verbs if v not in KUBERNETES_READ_VERBS]
        if extra:
            messages.append(
                f"{where(resource_type, inputs)} rules[{index}] grants {', '.join(extra)}: a server only"
                f" reads ({', '.join(KUBERNETES_READ_VERBS)})"
            )
        for resource in (str(r) for r in as_list(rule.get("resources"))):
            if (
                resource == "*"
                or resource in FORBIDDEN_KUBERNETES_RESOURCES
                or resource.startswith("secrets")
            ):
                messages.append(
                    f"{where(resource_type, inputs)} rules[{index}] reaches {resource}: never granted to an"
                    " MCP server (credentials, or commands run in pods or nodes)"
                )
        if rule.get("nonResourceURLs"):
            messages.append(f"{where(resource_type, inputs)} rules[{index}] grants non-resource URLs")
    return messages


def _binding_findings(resource_type: str, inputs: Mapping[str, Any], server: str) -> list[str]:
    messages = []
    role = str(dig(inputs, "roleRef", "name") or "")
    if role != f"{ROLE_PREFIX}{server}-read":
        messages.append(
            f"{where(resource_type, inputs)} binds {dig(inputs, 'roleRef', 'kind')} {role}: a server is bound"
            f" only to its own read-only role ({ROLE_PREFIX}{server}-read, from its catalog kubernetesAccess)"
        )
    for subject in (as_map(s) for s in as_list(inputs.get("subjects"))):
        if subject.get("kind") != "ServiceAccount" or subject.get("name") != server:
            messages.append(
                f"{where(resource_type, inputs)} binds {subject.get('kind')} {subject.get('name')}: only the"
                f" server's own ServiceAccount ({server})"
            )
    return messages


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    kind = kind_of(resource_type)
    server = dig(inputs, "metadata", "labels", SERVER_LABEL)
    if not server or kind not in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        return []
    if kind in ("Role", "ClusterRole"):
        return _role_findings(resource_type, inputs)
    return _binding_findings(resource_type, inputs, str(server))


def _role(rules: list[dict[str, Any]], labelled: bool = True) -> CaseResource:
    labels = {SERVER_LABEL: "kube"} if labelled else {}
    return CaseResource(
        f"kubernetes:{RBAC}:ClusterRole",
        "kube-cluster-role",
        {
            "apiVersion": RBAC,
            "kind": "ClusterRole",
            "metadata": {"name": "mcp-server-kube-read", "labels": labels},
            "rules": rules,
        },
    )


def _binding(role: str = "mcp-server-kube-read", subject: str = "kube") -> CaseResource:
    return CaseResource(
        f"kubernetes:{RBAC}:ClusterRoleBinding",
        "kube-cluster-role-binding",
        {
            "apiVersion": RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "mcp-server-kube-read", "labels": {SERVER_LABEL: "kube"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": subject, "namespace": "mcp-platform"}],
        },
    )


_READ = {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": ["get", "list", "watch"]}


RULE = Rule(
    id="rbac-server-read-only",
    description="An MCP server's RBAC is read-only, never reaches Secrets, and binds only its own role to "
    "its own ServiceAccount.",
    severity="critical",
    remediation="Declare the resources a server reads in its catalog entry's `kubernetesAccess` and let the "
    "program render its role: get, list and watch only, never Secrets or exec/attach/proxy subresources.",
    catalog_fix="list only resources it reads under `kubernetesAccess.read` (never secrets)",
    validate_resource=validate,
    tags=("rbac",),
    cases=(
        Case("the rendered read-only role and binding", "pass", (_role([_READ]), _binding())),
        Case(
            "a chart's own role is the chart's",
            "pass",
            (_role([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}], labelled=False),),
        ),
        Case(
            "a server that may write",
            "violate",
            (_role([{**_READ, "verbs": ["get", "list", "watch", "patch"]}]),),
        ),
        Case(
            "a server reading secrets",
            "violate",
            (_role([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),),
        ),
        Case(
            "a server that may exec into pods",
            "violate",
            (_role([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}]),),
        ),
        Case("a server bound to cluster-admin", "violate", (_binding(role="cluster-admin"),)),
        Case("a server bound to view", "violate", (_binding(role="view"),)),
        Case("its role bound to another account", "violate", (_binding(subject="default"),)),
    ),
)
