"""Mesh: no workload turns mTLS off or back to PERMISSIVE (a port-level PERMISSIVE, for the gateway's
public listener that clients reach without a mesh identity, is the one exception)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import PEER_AUTHENTICATION, k8s
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import as_map, dig, kind_of, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if kind_of(resource_type) != "PeerAuthentication":
        return []
    messages = []
    mode = dig(inputs, "spec", "mtls", "mode")
    if mode in ("DISABLE", "PERMISSIVE"):
        messages.append(f"{where(resource_type, inputs)} sets mtls.mode {mode}")
    for port, setting in as_map(dig(inputs, "spec", "portLevelMtls")).items():
        if dig(setting, "mode") == "DISABLE":
            messages.append(f"{where(resource_type, inputs)} disables mTLS on port {port}")
    return messages


_STRICT = {"spec": {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8443": {"mode": "PERMISSIVE"}}}}

RULE = Rule(
    id="mesh-no-mtls-downgrade",
    description="No PeerAuthentication disables mTLS or makes a workload PERMISSIVE.",
    severity="high",
    remediation="Remove the PeerAuthentication override, or limit it to portLevelMtls PERMISSIVE on a public "
    "listener.",
    validate_resource=validate,
    tags=("mesh",),
    cases=(
        Case("strict with a public port", "pass", (k8s(PEER_AUTHENTICATION, "gw", _STRICT),)),
        Case(
            "permissive workload",
            "violate",
            (k8s(PEER_AUTHENTICATION, "alpha", {"spec": {"mtls": {"mode": "PERMISSIVE"}}}),),
        ),
        Case(
            "port disabled",
            "violate",
            (
                k8s(
                    PEER_AUTHENTICATION,
                    "alpha",
                    {"spec": {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}}},
                ),
            ),
        ),
    ),
)
