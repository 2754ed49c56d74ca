"""The policy reports a plan writes: markdown for the PR, SARIF 2.1.0, JUnit XML; all from one review."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from xml.etree import ElementTree

from mcpfleet.plan.run import PlanResult, plan
from policies.rules import all_rules

REPO = Path(__file__).resolve().parents[2]


@cache
def planned(env: str) -> PlanResult:
    return plan(env, REPO / "catalog", REPO / "stacks", None)  # type: ignore[arg-type]


def test_every_plan_writes_the_three_reports() -> None:
    files = planned("dev").files
    assert {"policy-report.md", "policy-report.sarif", "policy-report.junit.xml"} <= set(files)


def test_markdown_leads_with_the_verdict_and_names_rule_server_and_fix() -> None:
    result = planned("prod")
    text = result.files["policy-report.md"]
    assert text.startswith(
        "### Policy review: `prod` fails" if result.blocking else "### Policy review: `prod` passes"
    )
    for violation in result.violations:
        assert f"`{violation.rule_id}`" in text
        if violation.server:
            assert f"| {violation.server} |" in text
    assert f"{len(all_rules())} rules checked" in text


def test_sarif_is_2_1_0_with_every_rule_and_a_located_result_per_violation() -> None:
    result = planned("prod")
    sarif = json.loads(result.files["policy-report.sarif"])
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == [rule.id for rule in all_rules()]
    assert len(run["results"]) == len(result.violations)
    for finding, violation in zip(run["results"], result.violations, strict=True):
        assert finding["ruleId"] == violation.rule_id
        assert finding["level"] == ("error" if violation.mandatory else "warning")
        uri = finding["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        expected = (
            f"catalog/servers/{violation.server}.yaml" if violation.server else "stacks/Pulumi.prod.yaml"
        )
        assert uri.endswith(expected)


def test_junit_has_a_case_per_rule_failing_only_on_mandatory_violations() -> None:
    result = planned("prod")
    suite = ElementTree.fromstring(result.files["policy-report.junit.xml"])
    cases = suite.findall("testcase")
    assert len(cases) == len(all_rules())
    failing = {case.get("name") for case in cases if case.find("failure") is not None}
    assert failing == {v.rule_id for v in result.blocking}
    assert suite.get("failures") == str(len(failing))


def test_advisory_environments_never_fail_the_junit_suite() -> None:
    result = planned("dev")
    assert not result.blocking
    suite = ElementTree.fromstring(result.files["policy-report.junit.xml"])
    assert suite.get("failures") == "0"
