"""Network: every namespace that runs our pods starts from deny-all, then opens only what is declared."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policies.rules._examples import NETWORK_POLICY, deployment, k8s
from policies.rules._framework import Case, Context, Finding, Resource, Rule
from policies.rules._k8s import as_list, as_map, dig, namespace_of, pod_spec

_DENY_ALL = {"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}


def is_default_deny(inputs: Mapping[str, Any]) -> bool:
    """Selects every pod, governs both directions, allows nothing."""
    spec = as_map(inputs.get("spec"))
    selector = as_map(spec.get("podSelector"))
    types = set(as_list(spec.get("policyTypes")))
    return (
        not as_map(selector.get("matchLabels"))
        and not as_list(selector.get("matchExpressions"))
        and {"Ingress", "Egress"} <= types
        and not as_list(spec.get("ingress"))
        and not as_list(spec.get("egress"))
    )


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    with_pods: dict[str, Resource] = {}
    for r in resources:
        if pod_spec(r.type, r.inputs) is not None:
            with_pods.setdefault(namespace_of(r.inputs), r)
    denied = {
        namespace_of(r.inputs)
        for r in resources
        if r.type.endswith(":NetworkPolicy")
        and r.type.startswith("kubernetes:")
        and is_default_deny(r.inputs)
    }
    return [
        Finding(
            f"namespace {namespace} runs pods ({dig(first.inputs, 'kind')} "
            f"{dig(first.inputs, 'metadata', 'name')})"
            " but has no default-deny NetworkPolicy",
            first.urn,
        )
        for namespace, first in sorted(with_pods.items())
        if namespace not in denied
    ]


RULE = Rule(
    id="namespace-default-deny",
    description="Every namespace with workloads has a default-deny NetworkPolicy (empty podSelector, "
    "Ingress and Egress, no rules).",
    severity="high",
    remediation="Add a NetworkPolicy `default-deny` to the namespace: podSelector: {}, policyTypes: "
    "[Ingress, Egress]; then allow each flow with its own policy.",
    validate_stack=validate,
    tags=("network",),
    cases=(
        Case("deny-all present", "pass", (deployment(), k8s(NETWORK_POLICY, "default-deny", _DENY_ALL))),
        Case("no NetworkPolicy", "violate", (deployment(),)),
        Case(
            "policy selects only some pods",
            "violate",
            (
                deployment(),
                k8s(
                    NETWORK_POLICY,
                    "alpha",
                    {
                        "spec": {
                            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "alpha"}},
                            "policyTypes": ["Ingress", "Egress"],
                        }
                    },
                ),
            ),
        ),
        Case(
            "ingress only",
            "violate",
            (
                deployment(),
                k8s(
                    NETWORK_POLICY, "default-deny", {"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
                ),
            ),
        ),
    ),
)
