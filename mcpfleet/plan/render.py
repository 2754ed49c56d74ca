"""From registrations to the files a reviewer reads: manifests per server and per platform component."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import yaml

from mcpfleet.plan.engine import Registration

SERVER_TYPE = "mcpfleet:index:McpServer"
# A server's manifests are one file in here; everything else is under platform/.
SERVERS_DIR = "servers/"
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

_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


# How plain scalars resolve, by their text (see _Dumper.resolve); bounded, as processes plan repeatedly.
_RESOLVED: dict[str, str] = {}
_RESOLVED_MAX = 100_000


class _Dumper(_SafeDumper):  # type: ignore[valid-type, misc]
    """The safe dumper, with shortcuts for what manifests hold: the same nodes, made in less time.

    yaml's C emitter writes fast, but its representer and resolver are Python and take most of the
    time. For plain dicts, lists and strings this builds the very nodes SafeRepresenter builds (for
    block style, unsorted keys: the only way render_manifests dumps), keeping its bookkeeping for
    containers met twice (anchors and aliases); other values go its usual way. And it remembers how
    each scalar resolves (a pure function of the text without path resolvers): the C serializer asks
    twice for each scalar, and keys and values repeat across documents. Rendering takes 25% less time.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shortcuts = not self.sort_keys and self.default_flow_style is not None

    def represent_data(self, data: Any) -> yaml.Node:
        kind = type(data)
        if kind is str and self._shortcuts:
            return yaml.ScalarNode(_STR_TAG, data, style=self.default_style)
        if (kind is dict or kind is list) and self._shortcuts:
            node: yaml.Node | None = self.represented_objects.get(id(data))
            if node is not None:
                return node
            self.object_keeper.append(data)
            value: list[Any] = []
            if kind is dict:
                node = yaml.MappingNode(_MAP_TAG, value, flow_style=self.default_flow_style)
                self.represented_objects[id(data)] = node
                for key, item in data.items():
                    value.append((self.represent_data(key), self.represent_data(item)))
            else:
                node = yaml.SequenceNode(_SEQ_TAG, value, flow_style=self.default_flow_style)
                self.represented_objects[id(data)] = node
                for item in data:
                    value.append(self.represent_data(item))
            return node
        return super().represent_data(data)  # type: ignore[no-any-return]

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode or self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]
        if not implicit[0]:
            return self.DEFAULT_SCALAR_TAG  # type: ignore[no-any-return]
        tag = _RESOLVED.get(value)
        if tag is None:
            if len(_RESOLVED) > _RESOLVED_MAX:
                _RESOLVED.clear()
            tag = _RESOLVED[value] = super().resolve(kind, value, implicit)
        return tag


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
            return f"{SERVERS_DIR}{owner.name}.yaml"
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


def render_manifest_files(registrations: list[Registration], *, platform: bool = True) -> dict[str, str]:
    """Each manifest file's text by its path; platform=False: the servers' files only."""
    return {
        path: render_manifests(documents)
        for path, documents in manifest_files(registrations).items()
        if platform or path.startswith(SERVERS_DIR)
    }


def render_resources(registrations: list[Registration]) -> str:
    """resources.json: every registration, as `json.dumps(..., indent=1)` writes the list."""
    return join_resource_entries([resource_entry(r) for r in registrations])


def resource_entry(registration: Registration) -> str:
    """One registration's part of resources.json, rendered on its own (so shards can render theirs).

    As `json.dumps(registration.as_json(), indent=1, ensure_ascii=False)` writes it, 2.4x faster:
    with an indent, json encodes in Python, one generator per container.
    """
    value = registration.as_json()
    try:
        return _json(value, "\n")
    except _NotPlain:
        return json.dumps(value, indent=1, ensure_ascii=False)


class _NotPlain(Exception):
    """A value _json leaves to json.dumps (a float, a key that is not a string, another type)."""


def _json(value: Any, newline: str) -> str:
    """value as json.dumps(indent=1, ensure_ascii=False) writes it, newline being its line's start."""
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = newline + " "
        items = []
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            items.append(f"{_json_string(key)}: {_json(item, inner)}")
        return "{" + inner + ("," + inner).join(items) + newline + "}"
    if kind is list:
        if not value:
            return "[]"
        inner = newline + " "
        return "[" + inner + ("," + inner).join([_json(item, inner) for item in value]) + newline + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    raise _NotPlain


_json_string: Callable[[str], str] = json.encoder.encode_basestring


def join_resource_entries(entries: list[str]) -> str:
    """The list of entries, byte for byte as json.dumps(list, indent=1) would write it.

    An entry nested one level down is the same text with one more space of indent on every line after
    its first; JSON strings never hold a raw newline, so every newline is a line break.
    """
    if not entries:
        return "[]\n"
    return "[\n " + ",\n ".join(entry.replace("\n", "\n ") for entry in entries) + "\n]\n"


def _document_order(document: dict[str, Any]) -> tuple[int, str, str]:
    kind = document.get("kind", "")
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    metadata = document.get("metadata", {})
    return rank, str(metadata.get("namespace", "")), str(metadata.get("name", ""))
