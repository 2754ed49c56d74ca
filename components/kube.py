"""Typed pulumi_kubernetes resources from the plain objects that `manifests` builds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.manifests import K8sObject

# kind -> (resource class, top-level fields besides apiVersion/kind/metadata, as constructor args)
_TYPED: dict[str, tuple[Callable[..., pulumi.CustomResource], dict[str, str]]] = {
    "Namespace": (k8s.core.v1.Namespace, {}),
    "ServiceAccount": (
        k8s.core.v1.ServiceAccount,
        {"automountServiceAccountToken": "automount_service_account_token"},
    ),
    "ConfigMap": (k8s.core.v1.ConfigMap, {"data": "data"}),
    "Service": (k8s.core.v1.Service, {"spec": "spec"}),
    "Deployment": (k8s.apps.v1.Deployment, {"spec": "spec"}),
    "StatefulSet": (k8s.apps.v1.StatefulSet, {"spec": "spec"}),
    "HorizontalPodAutoscaler": (k8s.autoscaling.v2.HorizontalPodAutoscaler, {"spec": "spec"}),
    "PodDisruptionBudget": (k8s.policy.v1.PodDisruptionBudget, {"spec": "spec"}),
    "NetworkPolicy": (k8s.networking.v1.NetworkPolicy, {"spec": "spec"}),
    "Secret": (k8s.core.v1.Secret, {"type": "type", "stringData": "string_data"}),
    "PersistentVolumeClaim": (k8s.core.v1.PersistentVolumeClaim, {"spec": "spec"}),
    "ClusterRole": (k8s.rbac.v1.ClusterRole, {"rules": "rules"}),
    "ClusterRoleBinding": (
        k8s.rbac.v1.ClusterRoleBinding,
        {"roleRef": "role_ref", "subjects": "subjects"},
    ),
}


def kubernetes_resource(
    resource_name: str, obj: K8sObject, opts: pulumi.ResourceOptions
) -> pulumi.CustomResource:
    """Create the typed resource for obj; kinds of other API groups (CRDs) become CustomResources."""
    if obj["kind"] not in _TYPED:
        unexpected = set(obj) - {"apiVersion", "kind", "metadata", "spec"}
        if unexpected or "/" not in obj["apiVersion"]:
            raise ValueError(f"{obj['kind']} {resource_name}: not a custom resource we can create")
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=obj["apiVersion"],
            kind=obj["kind"],
            metadata=obj["metadata"],
            spec=obj.get("spec"),
            opts=opts,
        )
    resource_class, fields = _TYPED[obj["kind"]]
    unexpected = set(obj) - {"apiVersion", "kind", "metadata", *fields}
    if unexpected:
        raise ValueError(f"{obj['kind']} {resource_name}: fields not mapped: {sorted(unexpected)}")
    kwargs: dict[str, Any] = {arg: obj[field] for field, arg in fields.items() if field in obj}
    return resource_class(resource_name, metadata=obj["metadata"], opts=opts, **kwargs)
