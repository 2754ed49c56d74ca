"""Availability: every Deployment has a PodDisruptionBudget, so node drains keep it serving."""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._examples import PDB, deployment, k8s
from policies.rules._framework import PROD_ONLY, Case, Context, Finding, Resource, Rule
from policies.rules._k8s import as_map, dig, kind_of, labels_match, namespace_of, where


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    budgets = [r for r in resources if kind_of(r.type) == "PodDisruptionBudget"]
    findings = []
    for r in resources:
        if kind_of(r.type) != "Deployment":
            continue
        labels = as_map(dig(r.inputs, "spec", "template", "metadata", "labels"))
        covered = any(
            namespace_of(b.inputs) == namespace_of(r.inputs)
            and labels_match(as_map(dig(b.inputs, "spec", "selector")), labels)
            for b in budgets
        )
        if not covered:
            findings.append(
                Finding(f"{where(r.type, r.inputs)} has no PodDisruptionBudget selecting its pods", r.urn)
            )
    return findings


_BUDGET = {"spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "alpha"}}}}

RULE = Rule(
    id="deployment-disruption-budget",
    description="Every Deployment has a PodDisruptionBudget (blocking in prod).",
    severity="medium",
    remediation="Add a PodDisruptionBudget (maxUnavailable: 1) for the Deployment's pods, in its namespace.",
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
    ),
)
