"""A server's read access to the Kubernetes API (catalog `kubernetesAccess`) as plain objects: a ClusterRole
granting get, list and watch on exactly the resources its entry names, bound to its own ServiceAccount.

Only entries that declare `kubernetesAccess` get any: every other server runs without a token and without
RBAC. The catalog model refuses wildcards, Secrets and the subresources that run commands in pods or nodes;
the review's `rbac-server-read-only` rule checks the rendered objects again.
"""

from __future__ import annotations

from components.manifests import K8sObject
from components.manifests.labels import server_labels
from mcpfleet.catalog.models import KUBERNETES_READ_VERBS
from mcpfleet.fleet import FleetServer

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"


def cluster_role_name(server: FleetServer) -> str:
    return f"mcp-server-{server.name}-read"


def cluster_role(server: FleetServer) -> K8sObject | None:
    access = server.spec.kubernetes_access
    if access is None:
        return None
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRole",
        "metadata": {"name": cluster_role_name(server), "labels": server_labels(server)},
        "rules": [
            {
                "apiGroups": list(rule.api_groups),
                "resources": list(rule.resources),
                "verbs": list(KUBERNETES_READ_VERBS),
            }
            for rule in access.read
        ],
    }


def cluster_role_binding(server: FleetServer) -> K8sObject | None:
    if server.spec.kubernetes_access is None:
        return None
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": cluster_role_name(server), "labels": server_labels(server)},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": cluster_role_name(server),
        },
        "subjects": [{"kind": "ServiceAccount", "name": server.name, "namespace": server.namespace}],
    }


def kubernetes_read_objects(server: FleetServer) -> dict[str, K8sObject]:
    """The server's RBAC by Pulumi resource name; none without `kubernetesAccess`."""
    role, binding = cluster_role(server), cluster_role_binding(server)
    if role is None or binding is None:
        return {}
    return {f"{server.name}-cluster-role": role, f"{server.name}-cluster-role-binding": binding}
