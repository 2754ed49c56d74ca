"""Every rule's own cases, as data beside the rule, through the same review() the plan runs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import pytest

from mcpfleet.catalog.models import Server
from mcpfleet.model import ENVIRONMENTS
from mcpfleet.stacks.models import Environment
from policies.rules import all_rules
from policies.rules._framework import STRICTNESS, Case, Rule
from tests.policies._cases import run_case

CASES = [pytest.param(rule, case, id=f"{rule.id}:{case.name}") for rule in all_rules() for case in rule.cases]


@pytest.mark.parametrize(("rule", "case"), CASES)
def test_case(rule: Rule, case: Case, tmp_path: Path) -> None:
    violations = run_case(rule, case, tmp_path)
    if case.expect == "pass":
        assert violations == [], "\n".join(v.describe() for v in violations)
    else:
        assert violations, f"{rule.id} passed its disallowed case {case.name!r}"
        assert all(v.rule_id == rule.id and v.message for v in violations)


@pytest.mark.parametrize("rule", all_rules(), ids=lambda rule: rule.id)
def test_rule_has_allowed_and_disallowed_cases(rule: Rule) -> None:
    expectations = {case.expect for case in rule.cases}
    assert "pass" in expectations, f"{rule.id} has no allowed case"
    assert "violate" in expectations, f"{rule.id} has no disallowed case"
    names = [case.name for case in rule.cases]
    assert len(names) == len(set(names)), f"{rule.id} has two cases with one name"


def test_at_least_thirty_rules() -> None:
    assert len(all_rules()) >= 30


def _field(schema: Mapping[str, Any], path: str) -> bool:
    """Whether a dotted path (`environments.dev.image.digest`, `tools[].sha256`) names a field of schema."""
    defs = schema.get("$defs", {})

    def resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
        while True:
            if "$ref" in node:
                node = defs[node["$ref"].rsplit("/", 1)[-1]]
            elif "anyOf" in node:
                node = next(option for option in node["anyOf"] if option.get("type") != "null")
            else:
                return node

    node = resolve(schema)
    for segment in path.split("."):
        name, is_list = (segment[:-2], True) if segment.endswith("[]") else (segment, False)
        properties = node.get("properties", {})
        if name in properties:
            node = resolve(properties[name])
        elif isinstance(node.get("additionalProperties"), Mapping) and name in node.get(
            "propertyNames", {}
        ).get("enum", [name]):
            node = resolve(node["additionalProperties"])
        else:
            return False
        if is_list:
            if "items" not in node:
                return False
            node = resolve(node["items"])
    return True


FIXES = [
    pytest.param(rule, text, schema, id=f"{rule.id}:{kind}")
    for rule in all_rules()
    for kind, text, schema in (
        ("catalog", rule.catalog_fix, Server.model_json_schema(by_alias=True)),
        ("stack", rule.stack_fix, Environment.model_json_schema(by_alias=True)),
    )
    if text is not None
]


@pytest.mark.parametrize(("rule", "text", "schema"), FIXES)
def test_fixes_name_real_fields(rule: Rule, text: str, schema: Mapping[str, Any]) -> None:
    """A catalog fix names fields of a catalog entry, a stack fix settings of the stack file, in backticks,
    for the environment under review; each must exist, or the advice sends its reader nowhere."""
    for environment in ENVIRONMENTS:
        named = re.findall(r"`([^`]+)`", text.format(env=environment))
        assert named, f"{rule.id}: the fix names no field"
        unknown = [path for path in named if not _field(schema, path)]
        assert not unknown, f"{rule.id}: no such field: {', '.join(unknown)}"


def test_field_check_refuses_what_is_not_there() -> None:
    schema = Server.model_json_schema(by_alias=True)
    assert _field(schema, "environments.prod.image.digestSource")
    assert _field(schema, "tools[].sha256")
    assert not _field(schema, "environments.qa.image.digest")
    assert not _field(schema, "image.sha")
    assert not _field(schema, "tools.sha256")


def test_strictness_levels_are_the_stack_files() -> None:
    assert get_args(Environment.model_fields["strictness"].annotation) == STRICTNESS
