"""What a change does to each environment: servers and resources added, changed and removed.

Pure data in, pure data out: the `mcpfleet diff` command plans both revisions and hands the results
here. Only field paths are reported, never values, so a diff can be posted publicly even when an input
holds a secret.

Decommission contract. Removing a server from a protected environment (prod) must be deliberate: the
working tree's catalog keeps the server's entry, no longer enabled there, with a top-level marker

    decommissioned:
      environments: [prod]          # where it is being removed; must list each protected environment
      reason: replaced by brave-search, see PR 123   # why, for the reviewers (non-empty)
      date: "2026-05-01"            # when the removal was decided (YYYY-MM-DD)

The entry may be deleted in a later change, once prod no longer runs it (the base then no longer has it
in prod, so that later diff removes nothing from prod).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from mcpfleet.fleet import Fleet, FleetServer
from mcpfleet.model import ENVIRONMENTS

if TYPE_CHECKING:  # the engine loads the Pulumi SDK; this module stays pure data
    from mcpfleet.plan.engine import Registration

PROTECTED_ENVIRONMENTS: tuple[str, ...] = ("prod",)
DECOMMISSION_FIELD = "decommissioned"
# A resource's changed paths are listed up to this many; beyond it a count keeps the comment readable.
MAX_PATHS = 8
# Catalog fields whose effect in this environment is in the resolved fields (overrides applied: image,
# resources, scaling, env), or that do not change what runs there.
_IGNORED_SERVER_FIELDS = (
    "spec.environments",
    "spec.$schema",
    f"spec.{DECOMMISSION_FIELD}",
    "spec.image",
    "spec.resources",
    "spec.scaling",
    "spec.env",
    "spec.name",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Snapshot:
    """One revision planned in one environment: servers as flat field maps, resources by URN."""

    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Decommission:
    """The marker that makes removing a server from a protected environment deliberate."""

    environments: frozenset[str]
    reason: str
    date: str


@dataclass(frozen=True)
class Changed:
    """A server or resource present in both revisions, with the field paths that differ."""

    key: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Removal:
    """A server leaving a protected environment, and the marker that approves it (if any)."""

    server: str
    marker: Decommission | None


@dataclass(frozen=True)
class EnvDiff:
    environment: str
    servers_added: tuple[str, ...]
    servers_changed: tuple[Changed, ...]
    servers_removed: tuple[str, ...]
    resources_added: tuple[str, ...]
    resources_changed: tuple[Changed, ...]
    resources_removed: tuple[str, ...]
    protected_removals: tuple[Removal, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.servers_added
            or self.servers_changed
            or self.servers_removed
            or self.resources_added
            or self.resources_changed
            or self.resources_removed
        )


@dataclass(frozen=True)
class DiffReport:
    base: str
    environments: tuple[EnvDiff, ...]

    @property
    def protected_removals(self) -> list[tuple[str, Removal]]:
        return [(env.environment, r) for env in self.environments for r in env.protected_removals]

    @property
    def unapproved_removals(self) -> list[tuple[str, Removal]]:
        return [(env, removal) for env, removal in self.protected_removals if removal.marker is None]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted paths; lists stay whole values (an item's index says little in review)."""
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def changed_paths(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, ...]:
    """Paths whose value differs, including paths only one side has."""
    old, new = flatten(before), flatten(after)
    return tuple(sorted(path for path in old.keys() | new.keys() if old.get(path, ...) != new.get(path, ...)))


def server_fields(server: FleetServer) -> dict[str, Any]:
    """A server as it runs in one environment, as comparable plain data."""
    data: dict[str, Any] = {}
    for item in dataclasses.fields(server):
        value = getattr(server, item.name)
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json", by_alias=True)
        data[item.name] = value
    # Resolved and catalog fields share one namespace: `spec.` adds nothing a reviewer needs.
    return {
        path.removeprefix("spec."): value
        for path, value in flatten(data).items()
        if not any(path == ignored or path.startswith(ignored + ".") for ignored in _IGNORED_SERVER_FIELDS)
    }


def snapshot(fleet: Fleet, registrations: list[Registration]) -> Snapshot:
    return Snapshot(
        servers={server.name: server_fields(server) for server in fleet.servers},
        resources={r.urn: {"parent": r.parent, "inputs": r.inputs} for r in registrations},
    )


def parse_decommission(data: Any) -> tuple[Decommission | None, list[str]]:
    """Read the marker from an entry's raw YAML mapping; the second item lists what is wrong with it."""
    if not isinstance(data, Mapping) or DECOMMISSION_FIELD not in data:
        return None, []
    raw = data[DECOMMISSION_FIELD]
    if not isinstance(raw, Mapping):
        return None, [f"{DECOMMISSION_FIELD}: expected a mapping with environments, reason and date"]
    problems = []
    environments = raw.get("environments")
    if not (isinstance(environments, list) and environments and all(e in ENVIRONMENTS for e in environments)):
        problems.append(
            f"{DECOMMISSION_FIELD}.environments: expected a non-empty list of {', '.join(ENVIRONMENTS)}"
        )
    reason = raw.get("reason")
    if not (isinstance(reason, str) and reason.strip()):
        problems.append(f"{DECOMMISSION_FIELD}.reason: say why the server is removed")
    when = raw.get("date")
    when = when.isoformat() if isinstance(when, date) else when
    if not (isinstance(when, str) and _DATE.match(when)):
        problems.append(f"{DECOMMISSION_FIELD}.date: expected a date, YYYY-MM-DD")
    unknown = sorted(str(key) for key in raw if key not in ("environments", "reason", "date"))
    if unknown:
        problems.append(f"{DECOMMISSION_FIELD}: unknown fields {', '.join(unknown)}")
    if problems:
        return None, problems
    assert isinstance(environments, list) and isinstance(reason, str) and isinstance(when, str)
    return Decommission(frozenset(environments), reason.strip(), when), []


def diff_environment(
    environment: str, base: Snapshot, head: Snapshot, markers: Mapping[str, Decommission]
) -> EnvDiff:
    """Compare two snapshots of one environment; markers are the working tree's, by server name."""
    servers_removed = tuple(sorted(base.servers.keys() - head.servers.keys()))
    removals = (
        tuple(
            Removal(name, marker if marker is not None and environment in marker.environments else None)
            for name in servers_removed
            for marker in [markers.get(name)]
        )
        if environment in PROTECTED_ENVIRONMENTS
        else ()
    )
    return EnvDiff(
        environment=environment,
        servers_added=tuple(sorted(head.servers.keys() - base.servers.keys())),
        servers_changed=_changed(base.servers, head.servers),
        servers_removed=servers_removed,
        resources_added=tuple(sorted(head.resources.keys() - base.resources.keys())),
        resources_changed=_changed(base.resources, head.resources),
        resources_removed=tuple(sorted(base.resources.keys() - head.resources.keys())),
        protected_removals=removals,
    )


def _changed(base: Mapping[str, dict[str, Any]], head: Mapping[str, dict[str, Any]]) -> tuple[Changed, ...]:
    found = []
    for key in sorted(base.keys() & head.keys()):
        paths = changed_paths(base[key], head[key])
        if paths:
            found.append(Changed(key, paths))
    return tuple(found)


def warning_line(report: DiffReport) -> str | None:
    """The loud first line when a change removes a server from a protected environment."""
    removals = report.protected_removals
    if not removals:
        return None
    listed = ", ".join(
        f"`{removal.server}` from {env}" + ("" if removal.marker else " (NO decommission marker)")
        for env, removal in removals
    )
    return f"> [!CAUTION]\n> **This change REMOVES servers: {listed}.**"


def render_markdown(report: DiffReport) -> str:
    """The report as a pull-request comment: a warning first when needed, then one section per environment."""
    lines: list[str] = []
    warning = warning_line(report)
    if warning:
        lines += [warning]
        if report.unapproved_removals:
            lines.append(
                f"> Keep each entry in the catalog with `{DECOMMISSION_FIELD}: {{environments: [prod],"
                ' reason: ..., date: "YYYY-MM-DD"}` so the removal is deliberate and reviewed.'
            )
        for name, removal in report.protected_removals:
            if removal.marker:
                marker = removal.marker
                lines.append(f"> `{removal.server}` leaves {name}: {marker.reason} (decided {marker.date})")
        lines.append("")
    lines.append(f"## What this change does, against `{report.base}`")
    for env in report.environments:
        lines += ["", f"### {env.environment}", ""]
        if env.empty:
            lines.append("No change.")
            continue
        lines.append(
            f"Servers: {len(env.servers_added)} added, {len(env.servers_changed)} changed,"
            f" {len(env.servers_removed)} removed. Resources: {len(env.resources_added)} added,"
            f" {len(env.resources_changed)} changed, {len(env.resources_removed)} removed."
        )
        if env.servers_added or env.servers_changed or env.servers_removed:
            lines += ["", "| server | change | fields |", "|---|---|---|"]
            lines += [f"| `{name}` | added | |" for name in env.servers_added]
            lines += [f"| `{c.key}` | changed | {_paths(c.paths, ', ')} |" for c in env.servers_changed]
            lines += [f"| `{name}` | **removed** | |" for name in env.servers_removed]
        if env.resources_added or env.resources_changed or env.resources_removed:
            lines += ["", "<details><summary>Resources by URN</summary>", ""]
            lines += [f"- added `{urn}`" for urn in env.resources_added]
            lines += [f"- changed `{c.key}`: {_paths(c.paths, ', ')}" for c in env.resources_changed]
            lines += [f"- **removed** `{urn}`" for urn in env.resources_removed]
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _paths(paths: tuple[str, ...], sep: str) -> str:
    shown = sep.join(f"`{path}`" for path in paths[:MAX_PATHS])
    return shown + (f" and {len(paths) - MAX_PATHS} more" if len(paths) > MAX_PATHS else "")


def report_json(report: DiffReport) -> dict[str, Any]:
    """The same data as the markdown, for tools."""
    return {
        "base": report.base,
        "warning": bool(report.protected_removals),
        "unapprovedRemovals": [
            {"environment": env, "server": removal.server} for env, removal in report.unapproved_removals
        ],
        "environments": {
            env.environment: {
                "servers": {
                    "added": list(env.servers_added),
                    "changed": {c.key: list(c.paths) for c in env.servers_changed},
                    "removed": list(env.servers_removed),
                },
                "resources": {
                    "added": list(env.resources_added),
                    "changed": {c.key: list(c.paths) for c in env.resources_changed},
                    "removed": list(env.resources_removed),
                },
                "protectedRemovals": [
                    {
                        "server": removal.server,
                        "decommissioned": None
                        if removal.marker is None
                        else {"reason": removal.marker.reason, "date": removal.marker.date},
                    }
                    for removal in env.protected_removals
                ],
            }
            for env in report.environments
        },
    }
