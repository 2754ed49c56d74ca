"""The policy reports a plan writes: markdown for the PR, SARIF 2.1.0, JUnit XML; all from one review."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from xml.etree import ElementTree

from mcpfleet.plan.reports import render_markdown
from mcpfleet.plan.run import PlanResult, plan
from policies.review import Violation
from policies.rules import all_rules
from tests.sample import SAMPLE_CATALOG, sample_catalog

REPO = Path(__file__).resolve().parents[2]


@cache
def planned(env: str) -> PlanResult:
    return plan(env, SAMPLE_CATALOG, REPO / "stacks", None)  # type: ignore[arg-type]


@sample_catalog
def test_every_plan_writes_the_three_reports() -> None:
    files = planned("dev").files
    assert {"policy-report.md", "policy-report.sarif", "policy-report.junit.xml"} <= set(files)


@sample_catalog
def test_markdown_leads_with_the_verdict_and_names_rule_server_and_fix() -> None:
    result = planned("prod")
    text = result.files["policy-report.md"]
    assert text.startswith(
        "### Policy review: `prod` fails" if result.blocking else "### Policy review: `prod` passes"
    )
    for violation in result.violations:
        assert f"`{violation.rule_id}`" in text
        assert " ".join(violation.fix.split()) in text
        if violation.server:
            assert f"| {violation.server} |" in text
            assert f"#### {violation.server} (" in text
    assert f"{len(all_rules())} rules checked" in text


def _violation(rule_id: str, level: str, server: str | None, place: str = "catalog") -> Violation:
    return Violation(
        rule_id=rule_id,
        severity="high",
        enforcement=level,  # type: ignore[arg-type]
        message=f"{rule_id} found <this> on {server or 'the platform'}",
        remediation="the general remedy",
        description="",
        server=server,
        fix_place=place,  # type: ignore[arg-type]
        fix=f"set `{rule_id}.field` for {server or 'the platform'}",
    )


def test_markdown_counts_per_server_first_then_each_servers_findings_then_the_platform() -> None:
    violations = [
        _violation("rule-a", "advisory", "zeta"),
        _violation("rule-b", "mandatory", "omega"),
        _violation("rule-c", "advisory", "omega", place="platform"),
        _violation("rule-d", "advisory", None, place="stack"),
        _violation("rule-e", "mandatory", None, place="platform"),
    ]
    text = render_markdown(
        "dev",
        violations,
        [],
        10,
        servers=["alpha", "omega", "zeta"],
        catalog_entry=lambda name: f"cat/{name}.yaml",
        stack_file="st/Pulumi.dev.yaml",
    )
    assert text.startswith("### Policy review: `dev` fails\n")
    assert "Findings: 2 mandatory (they block the change), 3 advisory;" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    # Blocked servers first, then by name; the platform last, then the totals.
    assert rows == [
        "| ❌ | omega | 1 | 1 | `cat/omega.yaml` |",
        "| ⚠️ | zeta | 0 | 1 | `cat/zeta.yaml` |",
        "| ❌ | platform | 1 | 1 | `st/Pulumi.dev.yaml`, or the platform team |",
        "| | **total** | **2** | **3** | |",
    ]
    assert "1 of 3 servers have no finding: alpha." in text
    headings = [line for line in text.splitlines() if line.startswith("#### ")]
    assert headings == [
        "#### omega (1 mandatory, 1 advisory)",
        "#### zeta (1 advisory)",
        "#### platform (1 mandatory, 1 advisory)",
    ]
    omega = text[text.index("#### omega") : text.index("#### zeta")]
    assert omega.index("rule-b") < omega.index("rule-c"), "mandatory findings come first"
    assert "catalog change: set `rule-b.field` for omega" in omega
    assert "not a catalog change; platform team: set `rule-c.field` for omega" in omega
    platform = text[text.index("#### platform") :]
    assert "in `st/Pulumi.dev.yaml`: set `rule-d.field` for the platform" in platform
    assert "platform team: set `rule-e.field` for the platform" in platform
    assert "&lt;this>" in text and "<this>" not in text


def test_markdown_of_a_clean_review() -> None:
    text = render_markdown("dev", [], all_rules(), 3, servers=["alpha"])
    assert text.startswith("### Policy review: `dev` passes\n")
    assert "| ✅ | platform | 0 | 0 | `stacks/Pulumi.dev.yaml`, or the platform team |" in text
    assert "1 of 1 servers have no finding: alpha." in text
    assert "####" not in text
    assert f"{len(all_rules())} rules pass" in text


@sample_catalog
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
        expected = f"servers/{violation.server}.yaml" if violation.server else "stacks/Pulumi.prod.yaml"
        assert uri.endswith(expected)


@sample_catalog
def test_junit_has_a_case_per_rule_failing_only_on_mandatory_violations() -> None:
    result = planned("prod")
    suite = ElementTree.fromstring(result.files["policy-report.junit.xml"])
    cases = suite.findall("testcase")
    assert len(cases) == len(all_rules())
    failing = {case.get("name") for case in cases if case.find("failure") is not None}
    assert failing == {v.rule_id for v in result.blocking}
    assert suite.get("failures") == str(len(failing))


@sample_catalog
def test_advisory_environments_never_fail_the_junit_suite() -> None:
    result = planned("dev")
    assert not result.blocking
    suite = ElementTree.fromstring(result.files["policy-report.junit.xml"])
    assert suite.get("failures") == "0"
