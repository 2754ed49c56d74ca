"""The offline review: every rule on every registration, as the engine would run the pack.

Resource rules run once per resource, stack rules once over all resources; enforcement levels and rule
properties come from policies/config/<env>.json, the file `pulumi preview --policy-pack-config` takes.
`mcpfleet plan` calls review() on the registrations it recorded; the reports are rendered from the
Violations it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from mcpfleet.fleet import Fleet
from mcpfleet.model import EnvName
from policies.configfiles import enforcement_level, load_config, properties
from policies.rules import all_rules
from policies.rules._framework import SERVER_TYPE, Context, Level, Resource, Rule, Severity
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

    @property
    def mandatory(self) -> bool:
        return self.enforcement == "mandatory"

    def describe(self) -> str:
        """One readable paragraph: level, rule, server, resource, what is wrong and the fix."""
        subject = f"server {self.server}" if self.server else "stack"
        if self.resource_type:
            subject += f", {self.resource_type} {self.resource_name}"
        return (
            f"[{self.enforcement} / {self.severity}] {self.rule_id} ({subject}): {self.message}\n"
            f"  fix: {self.remediation}"
        )


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
    resources = [Resource(r.urn, r.type, r.name, r.inputs, r.parent) for r in registrations]
    by_urn = {r.urn: r for r in resources}
    components = {r.name: r.urn for r in resources if r.type == SERVER_TYPE}
    violations: list[Violation] = []
    for rule in rules if rules is not None else all_rules():
        level = enforcement_level(pack_config, rule.id)
        if level == "disabled":
            continue
        context = Context(rule.config_with_defaults(properties(pack_config, rule.id)), fleet, environment)

        def violation(message: str, urn: str | None, rule: Rule = rule, level: Level = level) -> Violation:
            resource = by_urn.get(urn) if urn else None
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
                server=server_of(urn, by_urn) if urn else None,
            )

        if rule.kind == "resource":
            for resource in resources:
                for message in rule.check_resource(resource.type, resource.inputs, context):
                    violations.append(violation(message, resource.urn))
        else:
            for finding in rule.check_stack(resources, context):
                # A catalog finding names a server but no resource: point it at that server's component.
                urn = finding.urn or components.get(finding.server or "")
                found = violation(finding.message, urn)
                if found.server is None and finding.server is not None:
                    found = replace(found, server=finding.server)
                violations.append(found)
    return sorted(
        violations,
        key=lambda v: (_LEVEL_ORDER[v.enforcement], _SEVERITY_ORDER[v.severity], v.rule_id, v.urn or ""),
    )


def mandatory(violations: Sequence[Violation]) -> list[Violation]:
    """The violations that make `pulumi preview --policy-pack` (and `mcpfleet plan`) fail."""
    return [v for v in violations if v.mandatory]
