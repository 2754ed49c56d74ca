"""Availability: in prod a workload runs at least two replicas, so one node or zone loss is survivable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import deployment
from policies.rules._framework import PROD_ONLY, Case, Context, Rule
from policies.rules._k8s import dig, kind_of, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if kind_of(resource_type) not in ("Deployment", "StatefulSet"):
        return []
    minimum = int(context.config.get("minReplicas", 2))
    replicas = dig(inputs, "spec", "replicas")
    # Unset means 1 to Kubernetes. The engine sends numbers as floats.
    count = 1 if replicas is None else replicas
    if isinstance(count, int | float) and count < minimum:
        return [
            f"{where(resource_type, inputs)} runs {int(count)} replica(s); at least {minimum} are required"
        ]
    return []


RULE = Rule(
    id="deployment-min-replicas",
    description="Workloads run at least two replicas (blocking in prod).",
    severity="medium",
    remediation="Set environments.prod.scaling.replicas and minReplicas to 2 or more in the catalog entry.",
    validate_resource=validate,
    enforcement=PROD_ONLY,
    config_schema={"minReplicas": {"type": "integer", "minimum": 1, "default": 2}},
    tags=("availability",),
    cases=(
        Case("two replicas", "pass", (deployment(),)),
        Case("float from the engine", "pass", (deployment({"spec.replicas": 3.0}),)),
        Case("one replica", "violate", (deployment({"spec.replicas": 1}),)),
        Case("replicas unset", "violate", (deployment({"spec.replicas": None}),)),
    ),
)
