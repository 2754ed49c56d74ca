"""The rule framework: plain data in, plain messages out, nothing from the Pulumi engine.

A rule is a module in `policies.rules` with a module-level `RULE`. It validates either one resource at
a time (`validate_resource(resource_type, inputs, context) -> messages`) or the whole stack at once
(`validate_stack(resources, context) -> findings`). `policies.pack` adapts it to pulumi_policy;
`policies.review` runs it offline. Both go through `Rule.check_*`, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mcpfleet.fleet import Fleet
from mcpfleet.model import ENVIRONMENTS, EnvName

Severity = Literal["low", "medium", "high", "critical"]
# `remediate` is left out on purpose: no rule rewrites resources, it only reports.
Level = Literal["advisory", "mandatory", "disabled"]
LEVELS: tuple[Level, ...] = get_args(Level)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
# Who changes what to clear a finding: a server's owner in its catalog entry, the platform team in the
# environment's stack file, or the platform team in the program or the policy config.
FixPlace = Literal["catalog", "stack", "platform"]
SERVER_TYPE = "mcpfleet:index:McpServer"
# The stack setting `strictness` (mcpfleet.stacks.models.Environment), least strict first: availability
# and pinning rules ask more of an environment the stricter its stack file says it is.
Strictness = Literal["relaxed", "standard", "strict"]
STRICTNESS: tuple[Strictness, ...] = get_args(Strictness)

# The default: advisory while developing, blocking from staging on.
DEFAULT_ENFORCEMENT: Mapping[EnvName, Level] = {
    "local": "advisory",
    "dev": "advisory",
    "staging": "mandatory",
    "prod": "mandatory",
}
# Rules about production posture (availability, pinning): visible everywhere, blocking in prod only.
PROD_ONLY: Mapping[EnvName, Level] = {
    "local": "advisory",
    "dev": "advisory",
    "staging": "advisory",
    "prod": "mandatory",
}


@dataclass(frozen=True)
class Resource:
    """One resource as a policy sees it: the engine's type, name and URN, its inputs, its parent's URN,
    and the URNs it is ordered after (its `depends_on` and the resources its inputs come from)."""

    urn: str
    type: str
    name: str
    inputs: Mapping[str, Any]
    parent: str | None = None
    dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Context:
    """What a validator may know besides the resource.

    config: the rule's properties (schema defaults, overridden by the policy-pack config file).
    fleet: the catalog resolved for the stack's environment, with that environment's settings (its
    strictness); None when it is not available (a catalog rule then has nothing to check and says so by
    returning no finding; a rule gated on strictness assumes the strictest).
    """

    config: Mapping[str, Any] = field(default_factory=dict)
    fleet: Fleet | None = None
    environment: EnvName | None = None

    @property
    def strictness(self) -> Strictness:
        """The environment's `strictness` from its stack file; unknown settings count as the strictest,
        so a rule gated on it checks too much rather than too little."""
        return self.fleet.settings.strictness if self.fleet is not None else STRICTNESS[-1]

    def at_least(self, strictness: Strictness) -> bool:
        """Whether the environment is at least as strict as strictness (`relaxed` < `standard` < `strict`)."""
        return STRICTNESS.index(self.strictness) >= STRICTNESS.index(strictness)


@dataclass(frozen=True)
class Finding:
    """A stack rule's violation, pointing at the resource at fault when there is one."""

    message: str
    urn: str | None = None
    # For catalog-level findings, which have no resource: the server they are about.
    server: str | None = None


ResourceValidator = Callable[[str, Mapping[str, Any], Context], list[str]]
StackValidator = Callable[[Sequence[Resource], Context], list[Finding]]


@dataclass(frozen=True)
class CaseResource:
    """A resource of a case; parent and depends_on name other resources of the same case."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    parent: str | None = None
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """An example the rule must pass (`expect="pass"`) or fail (`expect="violate"`), as data.

    fleet: optional catalog entries (dicts in catalog YAML form) for catalog-level rules; the test
    turns them into a Fleet through the real catalog and stack loaders.
    """

    name: str
    expect: Literal["pass", "violate"]
    resources: Sequence[CaseResource] = ()
    environment: EnvName = "prod"
    fleet: Sequence[Mapping[str, Any]] = ()
    # Overrides of the environment's stack settings (`mcpfleet:environment`), for fleet cases.
    stack: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """A rule and where each of its findings is fixed.

    remediation: the fix in general terms (the pack's remediation steps, SARIF's help text).
    catalog_fix: the change a server's owner makes in its catalog entry, naming the field in backticks
    (`{env}` stands for the environment under review); None when no catalog field governs what the rule
    checks, because the program renders it the same for every server: a finding on a server's resource
    then means the program (or a hand-made resource) is at fault, and goes to the platform team.
    stack_fix: the setting in the environment's stack file that fixes a platform finding, if one does.
    """

    id: str
    description: str
    severity: Severity
    remediation: str
    cases: Sequence[Case]
    version: str = "1.0.0"
    enforcement: Mapping[EnvName, Level] = field(default_factory=lambda: dict(DEFAULT_ENFORCEMENT))
    validate_resource: ResourceValidator | None = None
    validate_stack: StackValidator | None = None
    # JSON-schema properties of the rule's configuration, each with a "default".
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    catalog_fix: str | None = None
    stack_fix: str | None = None

    def __post_init__(self) -> None:
        if (self.validate_resource is None) == (self.validate_stack is None):
            raise ValueError(f"rule {self.id}: give exactly one of validate_resource, validate_stack")
        if set(self.enforcement) != set(ENVIRONMENTS):
            raise ValueError(f"rule {self.id}: enforcement must name every environment")

    @property
    def kind(self) -> Literal["resource", "stack"]:
        return "resource" if self.validate_resource is not None else "stack"

    def fix(self, server: str | None, environment: str) -> tuple[FixPlace, str]:
        """Where a finding is fixed and how: in the server's catalog entry, in the stack file, or in the
        platform's code and config (the rule's remediation)."""
        if server is not None and self.catalog_fix is not None:
            return "catalog", self.catalog_fix.format(env=environment)
        if self.stack_fix is not None:
            return "stack", self.stack_fix.format(env=environment)
        return "platform", self.remediation

    def config_with_defaults(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        values = {key: prop["default"] for key, prop in self.config_schema.items() if "default" in prop}
        values.update({k: v for k, v in (given or {}).items() if k != "enforcementLevel"})
        return values

    def check_resource(self, resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
        assert self.validate_resource is not None
        return self.validate_resource(resource_type, inputs, context)

    def check_stack(self, resources: Sequence[Resource], context: Context) -> list[Finding]:
        assert self.validate_stack is not None
        return self.validate_stack(resources, context)
