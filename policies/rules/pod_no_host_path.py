"""Pod Security `baseline`: no hostPath volumes (they reach the node's filesystem)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import POD, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import as_list, dig, pod_spec, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    if spec is None:
        return []
    return [
        f"{where(resource_type, inputs)} mounts hostPath {dig(v, 'hostPath', 'path')} "
        f"as volume {dig(v, 'name')}"
        for v in as_list(spec.get("volumes"))
        if dig(v, "hostPath") is not None
    ]


RULE = Rule(
    id="pod-no-host-path",
    description="Pods mount no hostPath volume.",
    severity="critical",
    remediation="Replace the hostPath volume with an emptyDir, ConfigMap, Secret or PersistentVolumeClaim.",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("emptyDir only", "pass", (deployment({f"{POD}.volumes": [{"name": "tmp", "emptyDir": {}}]}),)),
        Case(
            "hostPath",
            "violate",
            (deployment({f"{POD}.volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),),
        ),
    ),
)
