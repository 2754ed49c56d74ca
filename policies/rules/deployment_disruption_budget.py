"""Availability: a workload that never runs fewer than two pods has a PodDisruptionBudget, so a node
drain evicts its pods one at a time and it keeps serving.

A workload that may run a single pod is left alone: no budget keeps one pod serving through a drain
(that takes a second replica, which deployment-min-replicas asks for where the environment needs it).
mcpfleet renders a budget for every server and for the gateway once their floor is two or more, so on
the program's own output this rule finds nothing; it catches a workload made or changed outside it.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._examples import HPA, PDB, STATEFUL_SET, deployment, k8s
from policies.rules._framework import PROD_ONLY, Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import as_map, dig, kind_of, labels_match, namespace_of, where
from policies.rules._workloads import pod_labels, workloads


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    budgets = [r for r in resources if kind_of(r.type) == "PodDisruptionBudget"]
    findings = []
    for workload in workloads(resources):
        floor = workload.floor
        if floor is None or floor < 2:
            continue
        r = workload.resource
        labels = pod_labels(r.inputs)
        covered = any(
            namespace_of(b.inputs) == namespace_of(r.inputs)
            and labels_match(as_map(dig(b.inputs, "spec", "selector")), labels)
            for b in budgets
        )
        if not covered:
            findings.append(
                Finding(
                    f"{where(r.type, r.inputs)} {workload.describe_floor()} and no PodDisruptionBudget"
                    " selects its pods",
                    r.urn,
                )
            )
    return findings


_BUDGET = {"spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "alpha"}}}}


def _stateful_set() -> CaseResource:
    workload = deployment()
    inputs = {**workload.inputs, "kind": "StatefulSet"}
    return CaseResource(STATEFUL_SET, "alpha-statefulset", inputs)


def _autoscaler(minimum: int) -> CaseResource:
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "alpha"}
    return k8s(HPA, "alpha", {"spec": {"scaleTargetRef": target, "minReplicas": minimum, "maxReplicas": 6}})


RULE = Rule(
    id="deployment-disruption-budget",
    description="Workloads that never run fewer than two pods have a PodDisruptionBudget (blocking in prod).",
    severity="medium",
    remediation="Add a PodDisruptionBudget (maxUnavailable: 1) selecting the workload's pods, in its "
    "namespace. mcpfleet's McpServer and Gateway components render one whenever the floor is two or more: "
    "a workload without one was made or changed outside them.",
    validate_stack=validate,
    enforcement=PROD_ONLY,
    tags=("availability",),
    cases=(
        Case("budget selects the pods", "pass", (deployment(), k8s(PDB, "alpha", _BUDGET))),
        Case("no budget", "violate", (deployment(),)),
        Case(
            "budget for other pods",
            "violate",
            (
                deployment(),
                k8s(
                    PDB,
                    "beta",
                    {
                        "spec": {
                            "maxUnavailable": 1,
                            "selector": {"matchLabels": {"app.kubernetes.io/name": "beta"}},
                        }
                    },
                ),
            ),
        ),
        Case("no budget for a StatefulSet", "violate", (_stateful_set(),)),
        Case("one replica needs no budget", "pass", (deployment({"spec.replicas": 1}),)),
        Case("autoscaler may scale in to one", "pass", (deployment({"spec.replicas": 3}), _autoscaler(1))),
        Case("autoscaler keeps two", "violate", (deployment({"spec.replicas": 3}), _autoscaler(2))),
        Case(
            "two replicas in a relaxed environment still need a budget",
            "violate",
            (deployment(),),
            environment="dev",
            stack={"strictness": "relaxed"},
        ),
    ),
)
