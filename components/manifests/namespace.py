"""Server namespaces: Pod Security `restricted`, in the ambient mesh, deny-all unless a policy opens it."""

from __future__ import annotations

from components.manifests import K8sObject
from components.manifests.labels import PART_OF, TEAM_LABEL
from components.manifests.mesh import AMBIENT_LABELS

POD_SECURITY_LEVEL = "restricted"


def namespace(name: str, team: str) -> K8sObject:
    labels = {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        TEAM_LABEL: team,
        # Every pod here joins the ambient mesh: STRICT mTLS and the servers' AuthorizationPolicies apply.
        **AMBIENT_LABELS,
    }
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = POD_SECURITY_LEVEL
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def default_deny(namespace_name: str) -> K8sObject:
    """Every pod in the namespace starts with no traffic in or out; each server's policy adds its own."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "default-deny",
            "namespace": namespace_name,
            "labels": {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"},
        },
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
