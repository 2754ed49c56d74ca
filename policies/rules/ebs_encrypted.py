"""AWS: node and data volumes are encrypted at rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._framework import Case, CaseResource, Context, Rule
from policies.rules._k8s import as_list, dig

TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
VOLUME = "aws:ebs/volume:Volume"


def _true(value: Any) -> bool:
    # The provider takes launch-template booleans as strings ("true").
    return value is True or (isinstance(value, str) and value.lower() == "true")


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if resource_type == VOLUME:
        return [] if _true(inputs.get("encrypted")) else ["EBS volume is not encrypted"]
    if resource_type != TEMPLATE:
        return []
    mappings = as_list(inputs.get("blockDeviceMappings"))
    if not mappings:
        return ["launch template keeps the AMI's root volume settings: encryption is not required"]
    return [
        f"block device {dig(m, 'deviceName')} is not encrypted"
        for m in mappings
        if dig(m, "ebs") is not None and not _true(dig(m, "ebs", "encrypted"))
    ]


def _template(ebs: Mapping[str, Any]) -> CaseResource:
    return CaseResource(
        TEMPLATE, "nodes", {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": dict(ebs)}]}
    )


RULE = Rule(
    id="ebs-encrypted",
    description="EBS volumes and launch-template block devices are encrypted.",
    severity="high",
    remediation="Set ebs.encrypted: true (with the cluster's KMS key) on every block device mapping.",
    validate_resource=validate,
    tags=("aws",),
    cases=(
        Case("encrypted root", "pass", (_template({"encrypted": "true", "volumeSize": 100}),)),
        Case("encrypted volume", "pass", (CaseResource(VOLUME, "data", {"encrypted": True, "size": 10}),)),
        Case("unencrypted root", "violate", (_template({"encrypted": "false"}),)),
        Case("unencrypted volume", "violate", (CaseResource(VOLUME, "data", {"size": 10}),)),
    ),
)
