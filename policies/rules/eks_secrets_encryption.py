"""EKS: Kubernetes Secrets are envelope-encrypted with a KMS key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._framework import Case, CaseResource, Context, Rule
from policies.rules._k8s import as_list, dig

CLUSTER = "aws:eks/cluster:Cluster"


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if resource_type != CLUSTER:
        return []
    config = inputs.get("encryptionConfig")
    if "secrets" in as_list(dig(config, "resources")) and dig(config, "provider", "keyArn"):
        return []
    return [f"EKS cluster {inputs.get('name', '?')} does not encrypt Secrets with a KMS key"]


_KMS = {"provider": {"keyArn": "(known after apply)"}, "resources": ["secrets"]}

RULE = Rule(
    id="eks-secrets-encryption",
    description="EKS encrypts Kubernetes Secrets with a KMS key.",
    severity="high",
    remediation="Set encryptionConfig {resources: [secrets], provider.keyArn: <KMS key>} on the cluster.",
    validate_resource=validate,
    tags=("aws", "eks"),
    cases=(
        Case("KMS", "pass", (CaseResource(CLUSTER, "c", {"encryptionConfig": _KMS}),)),
        Case("no encryption", "violate", (CaseResource(CLUSTER, "c", {}),)),
        Case(
            "no key",
            "violate",
            (CaseResource(CLUSTER, "c", {"encryptionConfig": {"resources": ["secrets"]}}),),
        ),
    ),
)
