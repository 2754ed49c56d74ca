"""Reading Kubernetes objects as the engine sends them (camelCase, apiVersion/kind, nested dicts)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

# Types whose inputs hold a pod template, and where the pod spec sits in each.
_POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def kind_of(resource_type: str) -> str | None:
    """`kubernetes:apps/v1:Deployment` -> `Deployment`; None for anything not a Kubernetes object."""
    if not resource_type.startswith("kubernetes:") or resource_type.startswith("kubernetes:helm"):
        return None
    return resource_type.rsplit(":", 1)[-1]


def dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def name_of(inputs: Mapping[str, Any]) -> str:
    return str(dig(inputs, "metadata", "name") or "?")


def namespace_of(inputs: Mapping[str, Any]) -> str:
    return str(dig(inputs, "metadata", "namespace") or "default")


def pod_spec(resource_type: str, inputs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a workload, or None when the resource runs no pods."""
    kind = kind_of(resource_type)
    path = _POD_SPEC_PATHS.get(kind or "")
    if path is None:
        return None
    spec = dig(inputs, *path)
    return spec if isinstance(spec, Mapping) else {}


def containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every container of a pod: init and ephemeral ones can escalate just as well."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in as_list(spec.get(key)):
            if isinstance(container, Mapping):
                yield container


def main_containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for container in as_list(spec.get("containers")):
        if isinstance(container, Mapping):
            yield container


def effective(container: Mapping[str, Any], spec: Mapping[str, Any], field: str) -> Any:
    """A security setting as Kubernetes resolves it: the container's, else the pod's."""
    value = dig(container, "securityContext", field)
    return value if value is not None else dig(spec, "securityContext", field)


def where(resource_type: str, inputs: Mapping[str, Any], container: Mapping[str, Any] | None = None) -> str:
    """`Deployment mcp-search/brave-search, container server`: how messages name the object."""
    text = f"{kind_of(resource_type)} {namespace_of(inputs)}/{name_of(inputs)}"
    return f"{text}, container {container.get('name', '?')}" if container is not None else text


def labels_match(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A label selector's matchLabels against labels (matchExpressions: only `In`, the kind we render)."""
    match = as_map(selector.get("matchLabels"))
    if any(labels.get(key) != value for key, value in match.items()):
        return False
    for expression in as_list(selector.get("matchExpressions")):
        key, operator = dig(expression, "key"), dig(expression, "operator")
        values = as_list(dig(expression, "values"))
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return bool(match) or bool(as_list(selector.get("matchExpressions")))
