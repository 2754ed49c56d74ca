"""Storage: every volume claim the stack makes resolves to a StorageClass that exists.

A claim naming a class nobody creates, or naming none where no default class exists, stays Pending, and so
does its pod: on EKS 1.30+ no StorageClass exists until one is created, so Prometheus (its claim names
none) would never start. Claims are read from PersistentVolumeClaims, StatefulSets' volumeClaimTemplates
and Helm values' `volumeClaimTemplate`s (kube-prometheus-stack's `storageSpec`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import as_list, as_map, dig, name_of, namespace_of
from policies.rules._platform import (
    chart,
    chart_name,
    chart_values,
    charts,
    eks_cluster,
    eks_clusters,
    kube,
    of_kind,
    truthy,
    walk,
)

DEFAULT_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


@dataclass(frozen=True)
class Claim:
    where: str
    storage_class: str | None  # None: names no class (the default applies); "": opts out of classes
    urn: str


def claims(resources: Sequence[Resource]) -> Iterator[Claim]:
    for r in of_kind(resources, "PersistentVolumeClaim"):
        yield Claim(
            f"PersistentVolumeClaim {namespace_of(r.inputs)}/{name_of(r.inputs)}",
            dig(r.inputs, "spec", "storageClassName"),
            r.urn,
        )
    for r in of_kind(resources, "StatefulSet"):
        for template in as_list(dig(r.inputs, "spec", "volumeClaimTemplates")):
            yield Claim(
                f"StatefulSet {namespace_of(r.inputs)}/{name_of(r.inputs)}, claim"
                f" {dig(template, 'metadata', 'name') or '?'}",
                dig(template, "spec", "storageClassName"),
                r.urn,
            )
    for release in charts(resources):
        for path, value in walk(chart_values(release)):
            if path and path[-1] == "volumeClaimTemplate" and isinstance(as_map(value).get("spec"), dict):
                yield Claim(
                    f"chart {chart_name(release)}, {'.'.join(path)}",
                    dig(value, "spec", "storageClassName"),
                    release.urn,
                )


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    classes = {name_of(r.inputs): r for r in of_kind(resources, "StorageClass")}
    defaults = [
        name
        for name, r in classes.items()
        if any(truthy(dig(r.inputs, "metadata", "annotations", key)) for key in DEFAULT_ANNOTATIONS)
    ]
    if not eks_clusters(resources):
        # An existing cluster brings its own classes: kind's `standard` (local-path), its default.
        brought = context.config.get("existingClusterDefaultStorageClass")
        if isinstance(brought, str) and brought:
            classes.setdefault(brought, Resource("", "", brought, {}))
            defaults.append(brought)
    findings = []
    for claim in claims(resources):
        if claim.storage_class is None:
            if not defaults:
                findings.append(
                    Finding(
                        f"{claim.where} names no StorageClass and the cluster has no default one (EKS"
                        " 1.30+ makes none): it stays Pending, and so does its pod; missing fix: a default"
                        " StorageClass (the gp3 one ClusterAddons makes on eks), or a class named in the"
                        " claim",
                        claim.urn,
                    )
                )
        elif claim.storage_class == "":
            findings.append(
                Finding(
                    f'{claim.where} opts out of StorageClasses (storageClassName ""), and nothing here makes'
                    " the PersistentVolume it would bind to: it stays Pending",
                    claim.urn,
                )
            )
        elif claim.storage_class not in classes:
            findings.append(
                Finding(
                    f"{claim.where} names StorageClass {claim.storage_class}, which nothing in this stack"
                    " creates: it stays Pending, and so does its pod",
                    claim.urn,
                )
            )
    return findings


_GP3 = kube(
    "storage.k8s.io/v1",
    "StorageClass",
    "gp3",
    {
        "metadata": {"name": "gp3", "annotations": {DEFAULT_ANNOTATIONS[0]: "true"}},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
    },
)
_NOT_DEFAULT = kube(
    "storage.k8s.io/v1",
    "StorageClass",
    "gp3",
    {"metadata": {"name": "gp3"}, "provisioner": "ebs.csi.aws.com"},
)


def _prometheus(storage_class: str | None = None) -> CaseResource:
    spec: dict[str, object] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "20Gi"}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    values = {"prometheus": {"prometheusSpec": {"storageSpec": {"volumeClaimTemplate": {"spec": spec}}}}}
    return chart("kube-prometheus-stack", "88.5.3", values)


def _claim(storage_class: str | None) -> CaseResource:
    spec: dict[str, object] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return kube("v1", "PersistentVolumeClaim", "data", {"spec": spec}, namespace="mcp-data")


RULE = Rule(
    id="volume-claim-storage-class",
    description="Every volume claim resolves to a StorageClass that exists: the one it names, or the "
    "cluster's default.",
    severity="critical",
    remediation="On eks keep the default gp3 StorageClass of ClusterAddons (EBS CSI driver add-on); name in "
    "a claim only a class the stack creates. On an existing cluster, set this rule's "
    "existingClusterDefaultStorageClass to the class it brings.",
    validate_stack=validate,
    config_schema={
        "existingClusterDefaultStorageClass": {
            "type": ["string", "null"],
            "default": "standard",
            "description": "The default StorageClass an existing cluster brings (kind: `standard`); null for "
            "none. Not used for EKS clusters the stack creates: EKS 1.30+ brings none.",
        }
    },
    tags=("storage", "deploy"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case("Prometheus on the default class", "pass", (eks_cluster(), _GP3, _prometheus())),
        Case("a claim naming the class", "pass", (eks_cluster(), _NOT_DEFAULT, _claim("gp3"))),
        Case("kind's own default class", "pass", (_claim(None),)),
        Case("no storage asked for", "pass", (eks_cluster(),)),
        Case("Prometheus on EKS without a class", "violate", (eks_cluster(), _prometheus())),
        Case("a class that is not the default", "violate", (eks_cluster(), _NOT_DEFAULT, _prometheus())),
        Case("a class nobody creates", "violate", (eks_cluster(), _GP3, _claim("io2"))),
        Case("opting out of classes", "violate", (eks_cluster(), _GP3, _claim(""))),
    ),
)
