"""Availability: replicas spread across zones, so one zone outage leaves the server up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import POD, deployment
from policies.rules._framework import PROD_ONLY, Case, Context, Rule
from policies.rules._k8s import as_list, dig, kind_of, pod_spec, where

ZONE = "topology.kubernetes.io/zone"


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if kind_of(resource_type) not in ("Deployment", "StatefulSet"):
        return []
    spec = pod_spec(resource_type, inputs) or {}
    spread = any(dig(c, "topologyKey") == ZONE for c in as_list(spec.get("topologySpreadConstraints")))
    anti_affinity = any(
        dig(term, "topologyKey") == ZONE or dig(term, "podAffinityTerm", "topologyKey") == ZONE
        for kind in (
            "requiredDuringSchedulingIgnoredDuringExecution",
            "preferredDuringSchedulingIgnoredDuringExecution",
        )
        for term in as_list(dig(spec, "affinity", "podAntiAffinity", kind))
    )
    if spread or anti_affinity:
        return []
    return [f"{where(resource_type, inputs)} does not spread its replicas over {ZONE}"]


RULE = Rule(
    id="deployment-zone-spread",
    description="Workload replicas spread across availability zones (blocking in prod).",
    severity="medium",
    remediation=f"Add a topologySpreadConstraint on {ZONE} (the McpServer component renders one; keep it).",
    validate_resource=validate,
    enforcement=PROD_ONLY,
    tags=("availability",),
    cases=(
        Case("zone spread", "pass", (deployment(),)),
        Case(
            "zone anti-affinity",
            "pass",
            (
                deployment(
                    {
                        f"{POD}.topologySpreadConstraints": None,
                        f"{POD}.affinity": {
                            "podAntiAffinity": {
                                "preferredDuringSchedulingIgnoredDuringExecution": [
                                    {"weight": 100, "podAffinityTerm": {"topologyKey": ZONE}}
                                ]
                            }
                        },
                    }
                ),
            ),
        ),
        Case(
            "host spread only",
            "violate",
            (
                deployment(
                    {
                        f"{POD}.topologySpreadConstraints": [
                            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname"}
                        ],
                    }
                ),
            ),
        ),
    ),
)
