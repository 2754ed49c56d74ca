"""The rules as pulumi_policy policies: the adapters between the engine's args objects and plain rules.

Importing this module starts nothing; `policies/__main__.py` hands build_policies() to PolicyPack.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.errors import InvalidInput
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.model import ENVIRONMENTS, EnvName
from mcpfleet.stacks.loader import environment_from_config
from mcpfleet.stacks.models import CONFIG_KEY
from policies.rules import all_rules
from policies.rules._framework import Context, Resource, Rule

PACK_NAME = "mcpfleet"
PACK_DESCRIPTION = (
    "mcpfleet: hardened MCP server fleets on Kubernetes (Pod Security, supply chain, network, mesh, "
    "secrets, RBAC, EKS, and fleet-wide MCP rules)."
)
PACK_ENFORCEMENT = EnforcementLevel.ADVISORY
REPO = Path(__file__).resolve().parent.parent
# What the offline plan shows for a value the engine does not know yet during preview.
UNKNOWN = "(known after apply)"


def plain(value: Any) -> Any:
    """The engine's proxied properties as plain dicts and lists, unknowns as the offline plan shows them.

    pulumi_policy raises UnknownValueError on reading an unknown; rules written for the offline plan
    read the placeholder string instead, so both paths see the same values.
    """
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key in value:
            try:
                result[str(key)] = plain(value[key])
            except UnknownValueError:
                result[str(key)] = UNKNOWN
        return result
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def engine_environment() -> EnvName | None:
    """The stack's environment under the engine (the analyzer configures the runtime before validating)."""
    try:
        stack = pulumi.get_stack()
    except Exception:
        return None
    return next((env for env in ENVIRONMENTS if env == stack), None)


@cache
def engine_fleet() -> Fleet | None:
    """The fleet of the stack under review, loaded as components/program.load_fleet does.

    The engine gives the pack the stack's config, not the program's objects, so the catalog is read
    again; a relative catalogDir is the project's (this repository's), not the pack's working directory.
    """
    env = engine_environment()
    if env is None:
        return None
    stack_file = f"stacks/Pulumi.{env}.yaml"
    try:
        config = pulumi.Config("mcpfleet")
        settings = environment_from_config(config.require_object(CONFIG_KEY.split(":", 1)[1]), stack_file)
        catalog_dir = Path(config.get("catalogDir") or "catalog")
        if not catalog_dir.is_absolute():
            catalog_dir = REPO / catalog_dir
        return resolve_fleet(load_catalog(catalog_dir), env, settings, stack_file)
    except (InvalidInput, pulumi.ConfigMissingError, OSError) as exc:
        # The program stops on the same input with a full message; catalog rules then have nothing to check.
        print(f"mcpfleet policy pack: catalog rules skipped: {exc}", file=sys.stderr)
        return None


def _schema(rule: Rule) -> PolicyConfigSchema | None:
    if not rule.config_schema:
        return None
    return PolicyConfigSchema(properties={key: dict(value) for key, value in rule.config_schema.items()})


def _message(rule: Rule, message: str) -> str:
    return f"{message}\nFix: {rule.remediation}"


def to_policy(rule: Rule) -> Policy:
    """One rule as a pulumi_policy policy. Levels come from the config file, so none is set here."""
    common: dict[str, Any] = {
        "name": rule.id,
        "description": rule.description,
        "config_schema": _schema(rule),
        "severity": Severity(rule.severity),
        "tags": list(rule.tags),
        "remediation_steps": rule.remediation,
    }
    if rule.kind == "resource":

        def validate_resource(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            # The fleet carries the environment's settings (strictness) some resource rules ask for.
            context = Context(
                rule.config_with_defaults(args.get_config()), engine_fleet(), engine_environment()
            )
            for message in rule.check_resource(args.resource_type, plain(args.props), context):
                report_violation(_message(rule, message), None)

        return ResourceValidationPolicy(validate=validate_resource, **common)

    def validate_stack(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            Resource(
                urn=r.urn,
                type=r.resource_type,
                name=r.name,
                inputs=plain(r.props),
                parent=r.parent.urn if r.parent is not None else r.opts.parent,
                dependencies=tuple(d.urn for d in r.dependencies),
            )
            for r in args.resources
        ]
        context = Context(rule.config_with_defaults(args.get_config()), engine_fleet(), engine_environment())
        for finding in rule.check_stack(resources, context):
            report_violation(_message(rule, finding.message), finding.urn)

    return StackValidationPolicy(validate=validate_stack, **common)


def build_policies() -> list[Policy]:
    return [to_policy(rule) for rule in all_rules()]
