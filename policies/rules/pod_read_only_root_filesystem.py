"""Containers mount their root filesystem read-only: a compromised server cannot plant binaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import containers, dig, pod_spec, where


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    if spec is None:
        return []
    return [
        f"{where(resource_type, inputs, c)} has a writable root filesystem"
        for c in containers(spec)
        if dig(c, "securityContext", "readOnlyRootFilesystem") is not True
    ]


RULE = Rule(
    id="pod-read-only-root-filesystem",
    description="Containers have a read-only root filesystem.",
    severity="medium",
    remediation="Set securityContext.readOnlyRootFilesystem: true; mount a size-limited emptyDir where the "
    "server must write (e.g. /tmp).",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("read-only", "pass", (deployment(),)),
        Case("writable", "violate", (deployment({f"{C0}.securityContext.readOnlyRootFilesystem": False}),)),
    ),
)
