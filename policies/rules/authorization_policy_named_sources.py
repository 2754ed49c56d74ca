"""Mesh: an ALLOW AuthorizationPolicy names who may call; a rule without `from` allows every caller."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import AUTHORIZATION_POLICY, k8s
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import as_list, as_map, dig, kind_of, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if kind_of(resource_type) != "AuthorizationPolicy":
        return []
    spec = as_map(inputs.get("spec"))
    if spec.get("action", "ALLOW") != "ALLOW":
        return []
    messages = []
    for index, rule in enumerate(as_list(spec.get("rules"))):
        sources = [as_map(dig(f, "source")) for f in as_list(dig(rule, "from"))]
        if not sources or any(not s or "*" in as_list(s.get("principals")) for s in sources):
            messages.append(f"{where(resource_type, inputs)} rules[{index}] allows any caller")
    return messages


def _policy(*rules: Mapping[str, Any]) -> dict[str, Any]:
    return {"spec": {"action": "ALLOW", "rules": list(rules)}}


RULE = Rule(
    id="authorization-policy-named-sources",
    description="Every rule of an ALLOW AuthorizationPolicy names its sources.",
    severity="high",
    remediation="Give each rule `from: [{source: {principals: [...]}}]` with the callers' service accounts.",
    validate_resource=validate,
    tags=("mesh",),
    cases=(
        Case(
            "named principals",
            "pass",
            (
                k8s(
                    AUTHORIZATION_POLICY,
                    "alpha",
                    _policy(
                        {"from": [{"source": {"principals": ["cluster.local/ns/mcp-gateway/sa/mcp-router"]}}]}
                    ),
                ),
            ),
        ),
        Case("empty rule", "violate", (k8s(AUTHORIZATION_POLICY, "alpha", _policy({})),)),
        Case(
            "wildcard principal",
            "violate",
            (k8s(AUTHORIZATION_POLICY, "alpha", _policy({"from": [{"source": {"principals": ["*"]}}]})),),
        ),
    ),
)
