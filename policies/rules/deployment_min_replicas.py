"""Availability: where the environment is strict, a workload never runs fewer than two replicas, so one
node or zone loss is survivable.

Only `strictness: strict` asks for this (its pods must spread across zones, which one pod cannot do);
a relaxed or standard environment's own `minimumReplicas` is its floor, and the program applies it. The
floor counted is the fewest pods the workload may run: its replicas at rest, or fewer if its autoscaler
may scale it in that far.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._examples import HPA, deployment, k8s
from policies.rules._framework import PROD_ONLY, Case, Context, Finding, Resource, Rule
from policies.rules._k8s import where
from policies.rules._workloads import workloads


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    if not context.at_least("strict"):
        return []
    minimum = int(context.config.get("minReplicas", 2))
    findings = []
    for workload in workloads(resources):
        floor = workload.floor
        if floor is not None and floor < minimum:
            r = workload.resource
            findings.append(
                Finding(
                    f"{where(r.type, r.inputs)} {workload.describe_floor()}; at least {minimum} are required"
                    f" where strictness is {context.strictness}",
                    r.urn,
                )
            )
    return findings


def _autoscaler(minimum: int) -> Case:
    body = {
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "alpha"},
            "minReplicas": minimum,
            "maxReplicas": 6,
        }
    }
    return Case(
        f"autoscaler floor of {minimum}",
        "pass" if minimum >= 2 else "violate",
        (deployment({"spec.replicas": 3}), k8s(HPA, "alpha", body)),
    )


RULE = Rule(
    id="deployment-min-replicas",
    description="Where strictness is strict, workloads never run fewer than two replicas (blocking in prod).",
    severity="medium",
    remediation="Run at least two replicas, and let no autoscaler scale in below two: for a server, "
    "scaling.replicas and scaling.minReplicas in its catalog entry; for the gateway and the MCP router, "
    "gateway.replicas and router.replicas in the stack file.",
    catalog_fix="set `environments.{env}.scaling.minReplicas` and `environments.{env}.scaling.replicas` to "
    "at least the number required (or remove them: the stack file's minimumReplicas then applies)",
    stack_fix="set `gateway.replicas` (the gateway) or `router.replicas` (the MCP router) to at least the "
    "number required (it is also the autoscaler's floor)",
    validate_stack=validate,
    enforcement=PROD_ONLY,
    config_schema={"minReplicas": {"type": "integer", "minimum": 1, "default": 2}},
    tags=("availability",),
    cases=(
        Case("two replicas", "pass", (deployment(),)),
        Case("float from the engine", "pass", (deployment({"spec.replicas": 3.0}),)),
        Case("one replica", "violate", (deployment({"spec.replicas": 1}),)),
        Case("replicas unset", "violate", (deployment({"spec.replicas": None}),)),
        Case("count not known yet", "pass", (deployment({"spec.replicas": "(known after apply)"}),)),
        _autoscaler(2),
        _autoscaler(1),
        Case(
            "one replica where strictness is relaxed",
            "pass",
            (deployment({"spec.replicas": 1}),),
            environment="dev",
            stack={"strictness": "relaxed"},
        ),
        Case(
            "one replica where strictness is standard",
            "pass",
            (deployment({"spec.replicas": 1}),),
            environment="staging",
            stack={"strictness": "standard"},
        ),
        Case(
            "one replica in dev made strict",
            "violate",
            (deployment({"spec.replicas": 1}),),
            environment="dev",
            stack={"strictness": "strict"},
        ),
    ),
)
