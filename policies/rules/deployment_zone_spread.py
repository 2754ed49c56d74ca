"""Availability: replicas spread across zones, so one zone outage leaves the server up.

What counts depends on the environment's strictness: `relaxed` and `standard` ask for spreading when
possible (a `ScheduleAnyway` constraint or a preferred anti-affinity will do), `strict` says pods must
spread (`DoNotSchedule`, or a required anti-affinity). mcpfleet renders exactly that for every server
and the gateway, so on the program's own output this rule finds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import POD, deployment
from policies.rules._framework import PROD_ONLY, Case, CaseResource, Context, Rule
from policies.rules._k8s import as_list, dig, kind_of, pod_spec, where

ZONE = "topology.kubernetes.io/zone"


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if kind_of(resource_type) not in ("Deployment", "StatefulSet"):
        return []
    spec = pod_spec(resource_type, inputs) or {}
    must = context.at_least("strict")
    # whenUnsatisfiable defaults to DoNotSchedule.
    spread = any(
        dig(c, "topologyKey") == ZONE and (not must or dig(c, "whenUnsatisfiable") in (None, "DoNotSchedule"))
        for c in as_list(spec.get("topologySpreadConstraints"))
    )
    kinds = ["requiredDuringSchedulingIgnoredDuringExecution"]
    if not must:
        kinds.append("preferredDuringSchedulingIgnoredDuringExecution")
    anti_affinity = any(
        dig(term, "topologyKey") == ZONE or dig(term, "podAffinityTerm", "topologyKey") == ZONE
        for kind in kinds
        for term in as_list(dig(spec, "affinity", "podAntiAffinity", kind))
    )
    if spread or anti_affinity:
        return []
    if must:
        return [
            f"{where(resource_type, inputs)} may place all its replicas in one zone: strictness"
            f" {context.strictness} needs a {ZONE} spread that is enforced (DoNotSchedule)"
        ]
    return [f"{where(resource_type, inputs)} does not spread its replicas over {ZONE}"]


def _soft_spread() -> CaseResource:
    return deployment({f"{POD}.topologySpreadConstraints.0.whenUnsatisfiable": "ScheduleAnyway"})


def _preferred_anti_affinity() -> CaseResource:
    term = {"weight": 100, "podAffinityTerm": {"topologyKey": ZONE}}
    return deployment(
        {
            f"{POD}.topologySpreadConstraints": None,
            f"{POD}.affinity": {
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term]}
            },
        }
    )


RULE = Rule(
    id="deployment-zone-spread",
    description="Workload replicas spread across availability zones, as the environment's strictness asks "
    "(blocking in prod).",
    severity="medium",
    remediation=f"Add a topologySpreadConstraint on {ZONE} (whenUnsatisfiable: DoNotSchedule where "
    "strictness is strict, ScheduleAnyway elsewhere). mcpfleet's McpServer and Gateway components render "
    "one: a workload without it was made or changed outside them.",
    validate_resource=validate,
    enforcement=PROD_ONLY,
    tags=("availability",),
    cases=(
        Case("zone spread", "pass", (deployment(),)),
        Case(
            "required zone anti-affinity",
            "pass",
            (
                deployment(
                    {
                        f"{POD}.topologySpreadConstraints": None,
                        f"{POD}.affinity": {
                            "podAntiAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": ZONE}]
                            }
                        },
                    }
                ),
            ),
        ),
        Case(
            "preferred anti-affinity where relaxed",
            "pass",
            (_preferred_anti_affinity(),),
            environment="dev",
            stack={"strictness": "relaxed"},
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
        Case("soft zone spread where strict", "violate", (_soft_spread(),)),
        Case(
            "soft zone spread where relaxed",
            "pass",
            (_soft_spread(),),
            environment="dev",
            stack={"strictness": "relaxed"},
        ),
        Case(
            "soft zone spread where standard",
            "pass",
            (_soft_spread(),),
            environment="staging",
            stack={"strictness": "standard"},
        ),
        Case(
            "preferred anti-affinity where strict",
            "violate",
            (_preferred_anti_affinity(),),
            environment="prod",
            stack={"strictness": "strict"},
        ),
        Case(
            "no spread where relaxed",
            "violate",
            (deployment({f"{POD}.topologySpreadConstraints": None}),),
            environment="dev",
            stack={"strictness": "relaxed"},
        ),
    ),
)
