"""The offline review: every rule on every registration, as the engine would run the pack.

Resource rules run once per resource, stack rules once over all resources; enforcement levels and rule
properties come from policies/config/<env>.json, the file `pulumi preview --policy-pack-config` takes.
`mcpfleet plan` calls review() on the registrations it recorded; the reports are rendered from the
Violations it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mcpfleet.fleet import Fleet
from mcpfleet.model import EnvName
from policies.configfiles import enforcement_level, load_config, properties
from policies.rules import all_rules
from policies.rules._framework import SERVER_TYPE, Context, FixPlace, Level, Resource, Rule, Severity
from policies.rules._stack import server_of

_LEVEL_ORDER = {"mandatory": 0, "advisory": 1, "disabled": 2}
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


class RegistrationLike(Protocol):
    """What review() reads of a registration (mcpfleet.plan.engine.Registration has it)."""

    @property
    def urn(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def parent(self) -> str | None: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def dependencies(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Violation:
    rule_id: str
    severity: Severity
    enforcement: Level
    message: str
    remediation: str
    description: str
    urn: str | None = None
    resource_type: str | None = None
    resource_name: str | None = None
    server: str | None = None
    # Where the finding is fixed (the server's catalog entry, the stack file, the platform's code or
    # policy config) and the change to make there; see Rule.fix.
    fix_place: FixPlace = "platform"
    fix: str = ""

    @property
    def mandatory(self) -> bool:
        return self.enforcement == "mandatory"

    def describe(self) -> str:
        """One readable paragraph: level, rule, server, resource, what is wrong and the fix."""
        subject = f"server {self.server}" if self.server else "platform"
        if self.resource_type:
            subject += f", {self.resource_type} {self.resource_name}"
        return (
            f"[{self.enforcement} / {self.severity}] {self.rule_id} ({subject}): {self.message}\n"
            f"  fix ({FIX_PLACES[self.fix_place]}): {self.fix or self.remediation}"
        )


# How a report names where a fix is made.
FIX_PLACES: Mapping[FixPlace, str] = {
    "catalog": "catalog entry",
    "stack": "stack file",
    "platform": "platform team",
}


def review(
    registrations: Sequence[RegistrationLike],
    environment: EnvName,
    fleet: Fleet | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    config_dir: Path | None = None,
    rules: Sequence[Rule] | None = None,
) -> list[Violation]:
    """Violations of every rule not disabled in environment, most serious first.

    fleet: the resolved catalog, for catalog-level rules (tool names, hashes, access, audience); without
    it those rules have nothing to check. config: the policy-pack config (default: the environment's file).
    """
    pack_config = config if config is not None else load_config(environment, config_dir)
    resources = [
        Resource(r.urn, r.type, r.name, r.inputs, r.parent, tuple(r.dependencies)) for r in registrations
    ]
    by_urn = {r.urn: r for r in resources}
    components = {r.name: r.urn for r in resources if r.type == SERVER_TYPE}
    violations: list[Violation] = []
    for rule in rules if rules is not None else all_rules():
        level = enforcement_level(pack_config, rule.id)
        if level == "disabled":
            continue
        context = Context(rule.config_with_defaults(properties(pack_config, rule.id)), fleet, environment)

        def violation(
            message: str, urn: str | None, server: str | None, rule: Rule = rule, level: Level = level
        ) -> Violation:
            resource = by_urn.get(urn) if urn else None
            fix_place, fix = rule.fix(server, environment)
            return Violation(
                rule_id=rule.id,
                severity=rule.severity,
                enforcement=level,
                message=message,
                remediation=rule.remediation,
                description=rule.description,
                urn=urn,
                resource_type=resource.type if resource else None,
                resource_name=resource.name if resource else None,
                server=server,
                fix_place=fix_place,
                fix=fix,
            )

        if rule.kind == "resource":
            for resource in resources:
                messages = rule.check_resource(resource.type, resource.inputs, context)
                if messages:
                    server = server_of(resource.urn, by_urn)
                    violations.extend(violation(message, resource.urn, server) for message in messages)
        else:
            for finding in rule.check_stack(resources, context):
                # A catalog finding names a server but no resource: point it at that server's component.
                urn = finding.urn or components.get(finding.server or "")
                server = (server_of(urn, by_urn) if urn else None) or finding.server
                violations.append(violation(finding.message, urn, server))
    return sorted(violations, key=sort_key)


def sort_key(violation: Violation) -> tuple[int, int, str, str]:
    """Most serious first: blocking before advisory, then by severity, rule and resource."""
    return (
        _LEVEL_ORDER[violation.enforcement],
        _SEVERITY_ORDER[violation.severity],
        violation.rule_id,
        violation.urn or "",
    )


def mandatory(violations: Sequence[Violation]) -> list[Violation]:
    """The violations that make `pulumi preview --policy-pack` (and `mcpfleet plan`) fail."""
    return [v for v in violations if v.mandatory]
