"""Mesh: mutual TLS is STRICT mesh-wide (a PeerAuthentication `default` in istio-system)."""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._examples import PEER_AUTHENTICATION, k8s
from policies.rules._framework import Case, Context, Finding, Resource, Rule
from policies.rules._k8s import as_map, dig, kind_of, namespace_of


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    root = str(context.config.get("rootNamespace", "istio-system"))
    for r in resources:
        if (
            kind_of(r.type) == "PeerAuthentication"
            and namespace_of(r.inputs) == root
            and not as_map(dig(r.inputs, "spec", "selector"))
            and dig(r.inputs, "spec", "mtls", "mode") == "STRICT"
        ):
            return []
    return [
        Finding(f"no mesh-wide PeerAuthentication in {root} sets mtls.mode STRICT: plaintext is accepted")
    ]


def _pa(namespace: str, mode: str) -> dict[str, object]:
    return {"metadata": {"name": "default", "namespace": namespace}, "spec": {"mtls": {"mode": mode}}}


RULE = Rule(
    id="mesh-strict-mtls",
    description="A mesh-wide PeerAuthentication in the Istio root namespace enforces STRICT mTLS.",
    severity="critical",
    remediation="Keep the Mesh component's PeerAuthentication `default` in istio-system (mtls.mode: STRICT).",
    validate_stack=validate,
    config_schema={"rootNamespace": {"type": "string", "default": "istio-system"}},
    tags=("mesh",),
    cases=(
        Case(
            "strict mesh-wide", "pass", (k8s(PEER_AUTHENTICATION, "default", _pa("istio-system", "STRICT")),)
        ),
        Case(
            "permissive mesh-wide",
            "violate",
            (k8s(PEER_AUTHENTICATION, "default", _pa("istio-system", "PERMISSIVE")),),
        ),
        Case(
            "strict in one namespace only",
            "violate",
            (k8s(PEER_AUTHENTICATION, "default", _pa("mcp-team", "STRICT")),),
        ),
        Case("no PeerAuthentication", "violate", ()),
    ),
)
