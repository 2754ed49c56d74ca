"""Reading the platform out of a stack's resources, for the deployability rules: the EKS cluster, its
add-ons and node groups, Helm charts and their values, and typed Kubernetes objects by kind.

The offline plan sees a Helm chart as one resource (its inputs: chart, version, values); under
`pulumi preview` its rendered objects are registered too, as its descendants. Rules read both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policies.rules._framework import CaseResource, Resource
from policies.rules._k8s import as_map, kind_of

# What the engine (and the plan) show for a value computed at apply time.
UNKNOWN = "(known after apply)"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_ADDON = "aws:eks/addon:Addon"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
CHART_TYPES = ("kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Chart", "kubernetes:helm.sh/v3:Release")
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"


def known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


def of_type(resources: Sequence[Resource], resource_type: str) -> list[Resource]:
    return [r for r in resources if r.type == resource_type]


def of_kind(resources: Sequence[Resource], kind: str, group: str | None = None) -> list[Resource]:
    """Typed Kubernetes objects of kind (and API group, when given: `cert-manager.io`)."""
    found = []
    for r in resources:
        if kind_of(r.type) != kind:
            continue
        if group is not None and str(r.inputs.get("apiVersion", "")).split("/")[0] != group:
            continue
        found.append(r)
    return found


def eks_clusters(resources: Sequence[Resource]) -> list[Resource]:
    return of_type(resources, EKS_CLUSTER)


def cluster_name(cluster: Resource) -> str:
    return str(cluster.inputs.get("name") or cluster.name)


def belongs_to(resource: Resource, cluster: Resource, clusters: Sequence[Resource]) -> bool:
    """Whether an EKS child (add-on, access entry, node group) is cluster's: by its `clusterName` when
    known, else (a preview shows the cluster's name output as unknown) by sharing its parent component,
    else when the stack has that one cluster."""
    name = resource.inputs.get("clusterName")
    if known(name):
        return name == cluster_name(cluster)
    if resource.parent is not None and resource.parent == cluster.parent:
        return True
    return len(clusters) == 1


def addons_of(resources: Sequence[Resource], cluster: Resource) -> dict[str, Resource]:
    clusters = eks_clusters(resources)
    return {
        str(r.inputs.get("addonName")): r
        for r in of_type(resources, EKS_ADDON)
        if belongs_to(r, cluster, clusters)
    }


def addon_configuration(addon: Resource) -> Mapping[str, Any]:
    """An add-on's `configurationValues` (a JSON or YAML document as EKS takes it; JSON here)."""
    raw = addon.inputs.get("configurationValues")
    if not isinstance(raw, str) or not known(raw):
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, Mapping) else {}


def charts(resources: Sequence[Resource]) -> list[Resource]:
    return [r for r in resources if r.type in CHART_TYPES]


def chart_name(chart: Resource) -> str:
    return str(chart.inputs.get("chart") or "").rsplit("/", 1)[-1]


def chart_values(chart: Resource) -> Mapping[str, Any]:
    return as_map(chart.inputs.get("values"))


def has_descendants(resource: Resource, resources: Sequence[Resource]) -> bool:
    """Whether the engine registered the chart's rendered objects (a preview does; the plan does not)."""
    return any(r.parent == resource.urn for r in resources)


def registers_kubernetes(resources: Sequence[Resource]) -> bool:
    """Whether the stack deploys anything through a Kubernetes provider."""
    return any(r.type.startswith("kubernetes:") for r in resources)


def walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) of a nested mapping, depth first."""
    yield path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk(item, (*path, str(key)))


def truthy(value: Any) -> bool:
    """A setting as EKS and Kubernetes read it: true, or the string "true"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


# Cases: the pieces the rules' allowed and disallowed stacks are built from.


def eks_cluster(name: str = "mcpfleet-dev", **inputs: Any) -> CaseResource:
    base: dict[str, Any] = {
        "name": name,
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
        "vpcConfig": {
            "endpointPrivateAccess": True,
            "endpointPublicAccess": True,
            "publicAccessCidrs": ["198.51.100.7/32"],
        },
    }
    base.update(inputs)
    return CaseResource(EKS_CLUSTER, f"{name}-cluster", base)


def eks_addon(addon: str, configuration: Mapping[str, Any] | None = None) -> CaseResource:
    inputs: dict[str, Any] = {"addonName": addon, "clusterName": UNKNOWN}
    if configuration is not None:
        inputs["configurationValues"] = json.dumps(configuration)
    return CaseResource(EKS_ADDON, f"addon-{addon}", inputs)


def chart(name: str, version: str, values: Mapping[str, Any] | None = None) -> CaseResource:
    return CaseResource(
        CHART_TYPES[0],
        f"chart-{name}",
        {"chart": name, "version": version, "name": name, "values": dict(values or {})},
    )


def kube(
    api_version: str, kind: str, name: str, body: Mapping[str, Any], namespace: str | None = None
) -> CaseResource:
    """A typed Kubernetes object as the engine registers it."""
    group, _, version = api_version.rpartition("/")
    resource_type = f"kubernetes:{group or 'core'}/{version}:{kind}"
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    inputs = {"apiVersion": api_version, "kind": kind, "metadata": metadata, **dict(body)}
    return CaseResource(resource_type, f"{name}-{kind.lower()}", inputs)
