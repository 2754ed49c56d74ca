"""AWS: nodes require IMDSv2 with a hop limit of 1, so pods cannot reach the node's instance role."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._framework import Case, CaseResource, Context, Rule
from policies.rules._k8s import dig

TYPES = ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance")


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if resource_type not in TYPES:
        return []
    options = dig(inputs, "metadataOptions") or {}
    messages = []
    if dig(options, "httpTokens") != "required":
        messages.append("instance metadata accepts IMDSv1 (metadataOptions.httpTokens is not `required`)")
    hops = dig(options, "httpPutResponseHopLimit")
    if dig(options, "httpEndpoint") != "disabled" and (hops is None or float(hops) > 1):
        messages.append(f"metadata hop limit is {hops or 'the default'}, not 1: containers can reach it")
    return messages


def _template(options: Mapping[str, Any]) -> CaseResource:
    return CaseResource(TYPES[0], "nodes", {"metadataOptions": dict(options)})


RULE = Rule(
    id="launch-template-imdsv2",
    description="EC2 launch templates require IMDSv2 with a response hop limit of 1.",
    severity="high",
    remediation="Set metadataOptions {httpTokens: required, httpPutResponseHopLimit: 1}.",
    validate_resource=validate,
    tags=("aws",),
    cases=(
        Case(
            "IMDSv2, one hop", "pass", (_template({"httpTokens": "required", "httpPutResponseHopLimit": 1}),)
        ),
        Case(
            "IMDSv1 allowed",
            "violate",
            (_template({"httpTokens": "optional", "httpPutResponseHopLimit": 1}),),
        ),
        Case("two hops", "violate", (_template({"httpTokens": "required", "httpPutResponseHopLimit": 2.0}),)),
        Case("defaults", "violate", (_template({}),)),
    ),
)
