"""Workloads and their replica floor: the fewest pods each may run, at rest or scaled in by an autoscaler."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.rules._framework import Resource
from policies.rules._k8s import as_map, dig, kind_of, name_of, namespace_of

WORKLOAD_KINDS = ("Deployment", "StatefulSet")


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet: its replicas at rest, and its autoscaler's floor if one targets it."""

    resource: Resource
    replicas: int | None
    autoscaled: bool = False
    autoscaler_min: int | None = None

    @property
    def floor(self) -> int | None:
        """The fewest replicas it may run; None while a count is unknown (during a preview)."""
        if self.replicas is None or (self.autoscaled and self.autoscaler_min is None):
            return None
        return self.replicas if self.autoscaler_min is None else min(self.replicas, self.autoscaler_min)

    def describe_floor(self) -> str:
        """`runs 1 replica`, or `runs 3 replicas, and its autoscaler may scale it in to 1`."""
        text = f"runs {self.replicas} replica{'s' if self.replicas != 1 else ''}"
        if (
            self.autoscaler_min is not None
            and self.replicas is not None
            and self.autoscaler_min < self.replicas
        ):
            text += f", and its HorizontalPodAutoscaler may scale it in to {self.autoscaler_min}"
        return text


def count(value: Any, unset: int) -> int | None:
    """A replica count as the engine sends it (floats, or a placeholder while unknown)."""
    if value is None:
        return unset
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def workloads(resources: Sequence[Resource]) -> Iterator[Workload]:
    targets: dict[tuple[str, str, str], int | None] = {}
    for r in resources:
        if kind_of(r.type) != "HorizontalPodAutoscaler":
            continue
        target = as_map(dig(r.inputs, "spec", "scaleTargetRef"))
        key = (namespace_of(r.inputs), str(target.get("kind")), str(target.get("name")))
        # An autoscaler with no minReplicas keeps at least one pod (Kubernetes' default).
        targets[key] = count(dig(r.inputs, "spec", "minReplicas"), 1)
    for r in resources:
        kind = kind_of(r.type)
        if kind not in WORKLOAD_KINDS:
            continue
        key = (namespace_of(r.inputs), kind, name_of(r.inputs))
        # Unset replicas means 1 to Kubernetes.
        replicas = count(dig(r.inputs, "spec", "replicas"), 1)
        yield Workload(r, replicas, key in targets, targets.get(key))


def pod_labels(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(dig(inputs, "spec", "template", "metadata", "labels"))
