"""From registrations to the files a reviewer reads: manifests per server and per platform component."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import yaml

from mcpfleet.plan.engine import Registration

SERVER_TYPE = "mcpfleet:index:McpServer"
FLEET_TYPE = "mcpfleet:index:Fleet"
PROVIDER_PREFIX = "pulumi:providers:"

# Apply order, so each file also reads top-down: where it lives, who it is, what it runs, who reaches it.
_KIND_ORDER = [
    "Namespace",
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
]

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def is_manifest(registration: Registration) -> bool:
    """A Kubernetes object the program creates (not a provider, not a component)."""
    return (
        registration.custom
        and registration.type.startswith("kubernetes:")
        and not registration.type.startswith(PROVIDER_PREFIX)
        and "kind" in registration.inputs
    )


def manifest_path(registration: Registration, by_urn: dict[str, Registration]) -> str:
    """`servers/<name>.yaml` inside a server's component, else `platform/<component name>.yaml`."""
    platform_component = "fleet"
    parent = registration.parent
    while parent and parent in by_urn:
        owner = by_urn[parent]
        if owner.type == SERVER_TYPE:
            return f"servers/{owner.name}.yaml"
        if owner.type.startswith("mcpfleet:") and owner.type != FLEET_TYPE and platform_component == "fleet":
            platform_component = owner.name
        parent = owner.parent
    return f"platform/{platform_component}.yaml"


def manifest_files(registrations: list[Registration]) -> dict[str, list[dict[str, Any]]]:
    by_urn = {r.urn: r for r in registrations}
    files: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for registration in registrations:
        if is_manifest(registration):
            files[manifest_path(registration, by_urn)].append(registration.inputs)
    for documents in files.values():
        documents.sort(key=_document_order)
    return dict(sorted(files.items()))


def render_manifests(documents: list[dict[str, Any]]) -> str:
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def render_resources(registrations: list[Registration]) -> str:
    return json.dumps([r.as_json() for r in registrations], indent=1, ensure_ascii=False) + "\n"


def _document_order(document: dict[str, Any]) -> tuple[int, str, str]:
    kind = document.get("kind", "")
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    metadata = document.get("metadata", {})
    return rank, str(metadata.get("namespace", "")), str(metadata.get("name", ""))
