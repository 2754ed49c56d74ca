"""Network: egress only as declared: every egress rule names its destinations and its ports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import NETWORK_POLICY, k8s
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import as_list, as_map, dig, kind_of, where

_PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if kind_of(resource_type) != "NetworkPolicy":
        return []
    messages = []
    for index, rule in enumerate(as_list(dig(inputs, "spec", "egress"))):
        at = f"{where(resource_type, inputs)} egress[{index}]"
        peers = as_list(dig(rule, "to"))
        if not peers:
            messages.append(f"{at} allows every destination")
        if not as_list(dig(rule, "ports")):
            messages.append(f"{at} allows every port")
        for peer in peers:
            block = as_map(dig(peer, "ipBlock"))
            # A hostname cannot be matched by a NetworkPolicy, so public egress is 0.0.0.0/0 on the
            # declared port (the mesh's ServiceEntry narrows it to the host); the cluster's own
            # ranges and the node metadata address must stay excepted.
            if block.get("cidr") == "0.0.0.0/0" and not set(_PRIVATE) <= set(as_list(block.get("except"))):
                messages.append(f"{at} reaches 0.0.0.0/0 without excepting the private and link-local ranges")
    return messages


def _egress(*rules: Mapping[str, Any]) -> dict[str, Any]:
    return {"spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": list(rules)}}


_PUBLIC_443 = {
    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [*_PRIVATE, "100.64.0.0/10"]}}],
    "ports": [{"port": 443, "protocol": "TCP"}],
}

RULE = Rule(
    id="network-egress-restricted",
    description="NetworkPolicy egress rules name their destinations and ports, and keep private ranges out.",
    severity="high",
    remediation="List each destination in the catalog entry's egress (host or CIDR, with ports); the "
    "component renders one narrow egress rule per entry.",
    catalog_fix="list each destination under `egress` (`egress[].host` or `egress[].cidr`, with "
    "`egress[].ports`); private ranges are never opened",
    validate_resource=validate,
    tags=("network",),
    cases=(
        Case("declared public 443", "pass", (k8s(NETWORK_POLICY, "alpha", _egress(_PUBLIC_443)),)),
        Case(
            "any destination",
            "violate",
            (k8s(NETWORK_POLICY, "alpha", _egress({"ports": [{"port": 443, "protocol": "TCP"}]})),),
        ),
        Case("any port", "violate", (k8s(NETWORK_POLICY, "alpha", _egress({"to": _PUBLIC_443["to"]})),)),
        Case(
            "internet including cluster ranges",
            "violate",
            (
                k8s(
                    NETWORK_POLICY,
                    "alpha",
                    _egress({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}),
                ),
            ),
        ),
    ),
)
