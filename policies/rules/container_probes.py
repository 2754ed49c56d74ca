"""Availability: liveness restarts a stuck server; readiness keeps traffic off one that cannot answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, deployment
from policies.rules._framework import PROD_ONLY, Case, Context, Rule
from policies.rules._k8s import kind_of, main_containers, pod_spec, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    # Jobs run to completion: probes are for long-running servers.
    if spec is None or kind_of(resource_type) in ("Job", "CronJob"):
        return []
    messages = []
    for c in main_containers(spec):
        missing = [probe for probe in ("livenessProbe", "readinessProbe") if not c.get(probe)]
        if missing:
            messages.append(f"{where(resource_type, inputs, c)} has no {' and no '.join(missing)}")
    return messages


RULE = Rule(
    id="container-probes",
    description="Long-running containers have liveness and readiness probes (blocking in prod).",
    severity="medium",
    remediation="Set health.liveness and health.readiness (an HTTP path, or TCP) in the catalog entry.",
    catalog_fix="set `health.liveness` and `health.readiness` (with `health.liveness.httpPath` and "
    "`health.readiness.httpPath`, or without them for a TCP check)",
    validate_resource=validate,
    enforcement=PROD_ONLY,
    tags=("availability",),
    cases=(
        Case("both probes", "pass", (deployment(),)),
        Case("no readiness probe", "violate", (deployment({f"{C0}.readinessProbe": None}),)),
        Case(
            "no probes", "violate", (deployment({f"{C0}.livenessProbe": None, f"{C0}.readinessProbe": None}),)
        ),
    ),
)
