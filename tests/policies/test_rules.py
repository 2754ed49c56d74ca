"""Every rule's own cases, as data beside the rule, through the same review() the plan runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.rules import all_rules
from policies.rules._framework import Case, Rule
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
