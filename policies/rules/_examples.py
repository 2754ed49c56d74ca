"""Building blocks for the rules' cases: a hardened workload and friends, changed one field at a time.

Cases stay data (types, names, inputs); these only save repeating a 60-line Deployment per case.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from policies.rules._framework import CaseResource

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
PEER_AUTHENTICATION = "kubernetes:security.istio.io/v1:PeerAuthentication"
AUTHORIZATION_POLICY = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
SERVER = "mcpfleet:index:McpServer"

LABELS = {"app.kubernetes.io/name": "alpha", "app.kubernetes.io/instance": "alpha"}


def _hardened_deployment() -> dict[str, Any]:
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    probe = {"httpGet": {"path": "/healthz", "port": "mcp"}, "periodSeconds": 10}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "alpha", "namespace": "mcp-team", "labels": dict(LABELS)},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [
                        {
                            "name": "server",
                            "image": "ghcr.io/example/alpha:1.2.3@sha256:" + "0" * 64,
                            "ports": [{"name": "mcp", "containerPort": 8080}],
                            "env": [
                                {"name": "LOG_LEVEL", "value": "info"},
                                {
                                    "name": "API_TOKEN",
                                    "valueFrom": {"secretKeyRef": {"name": "alpha", "key": "API_TOKEN"}},
                                },
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "livenessProbe": probe,
                            "readinessProbe": probe,
                            "securityContext": security,
                        }
                    ],
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "DoNotSchedule",
                            "labelSelector": {"matchLabels": dict(LABELS)},
                        }
                    ],
                },
            },
        },
    }


def changed(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of base with dotted paths set (`spec.replicas`); `containers.0` indexes lists.

    A value of None deletes the key.
    """
    result: dict[str, Any] = copy.deepcopy(dict(base))
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = result
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = value
        elif value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return result


C0 = "spec.template.spec.containers.0"
POD = "spec.template.spec"


def deployment(
    changes: Mapping[str, Any] | None = None, name: str = "alpha", parent: str | None = None
) -> CaseResource:
    return CaseResource(
        DEPLOYMENT, f"{name}-deployment", changed(_hardened_deployment(), changes or {}), parent
    )


def server(name: str = "alpha") -> CaseResource:
    """The McpServer component resources of a server hang under (cases refer to it by name)."""
    return CaseResource(SERVER, name, {})


def k8s(resource_type: str, name: str, body: Mapping[str, Any], parent: str | None = None) -> CaseResource:
    """A Kubernetes object of resource_type with metadata name/namespace and the given top-level fields."""
    kind = resource_type.rsplit(":", 1)[-1]
    api = resource_type.split(":")[1]
    api_version = api.split("/", 1)[1] if api.startswith("core/") else api
    inputs: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "mcp-team"},
    }
    inputs.update(copy.deepcopy(dict(body)))
    return CaseResource(resource_type, f"{name}-{kind.lower()}", inputs, parent)
