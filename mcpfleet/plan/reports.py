"""The policy review of a plan, three ways: markdown for the PR, SARIF for code scanning, JUnit for CI."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from xml.etree import ElementTree

from policies.review import Violation
from policies.rules._framework import Rule

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# How SARIF viewers rank a finding: a mandatory violation fails the change, an advisory one informs.
_SARIF_LEVEL = {"mandatory": "error", "advisory": "warning"}
_ICON = {"mandatory": "❌", "advisory": "⚠️"}


def _cell(text: str | None) -> str:
    return (text or "-").replace("|", "\\|").replace("\n", " ")


def render_markdown(env: str, violations: Sequence[Violation], rules: Sequence[Rule], resources: int) -> str:
    """A PR comment: the verdict first, then each finding with the rule, the server and the fix."""
    mandatory = [v for v in violations if v.mandatory]
    advisory = [v for v in violations if not v.mandatory]
    verdict = "fails" if mandatory else "passes"
    lines = [
        f"### Policy review: `{env}` {verdict}",
        "",
        f"{len(mandatory)} mandatory and {len(advisory)} advisory violations; {len(rules)} rules"
        f" checked over {resources} resources.",
        "",
    ]
    if violations:
        lines += [
            "| | rule | severity | server | resource | finding | fix |",
            "|---|---|---|---|---|---|---|",
        ]
        for v in violations:
            resource = f"{v.resource_type} `{v.resource_name}`" if v.resource_type else None
            lines.append(
                f"| {_ICON[v.enforcement]} | `{v.rule_id}` | {v.severity} | {_cell(v.server)} |"
                f" {_cell(resource)} | {_cell(v.message)} | {_cell(v.remediation)} |"
            )
        lines.append("")
    failing = {v.rule_id for v in violations}
    passing = [rule.id for rule in rules if rule.id not in failing]
    lines += [
        f"<details><summary>{len(passing)} rules pass</summary>",
        "",
        ", ".join(f"`{rule_id}`" for rule_id in passing) or "none",
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)


def render_sarif(
    env: str, violations: Sequence[Violation], rules: Sequence[Rule], location_of: Callable[[Violation], str]
) -> str:
    """SARIF 2.1.0; each finding points at the file a reviewer edits (the server's catalog entry)."""
    driver_rules = [
        {
            "id": rule.id,
            "shortDescription": {"text": rule.description},
            "help": {"text": rule.remediation},
            "properties": {"severity": rule.severity, "version": rule.version, "tags": list(rule.tags)},
        }
        for rule in rules
    ]
    index = {rule.id: position for position, rule in enumerate(rules)}
    results = [
        {
            "ruleId": v.rule_id,
            "ruleIndex": index[v.rule_id],
            "level": _SARIF_LEVEL[v.enforcement],
            "message": {"text": v.describe()},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": location_of(v)}}}],
            "properties": {
                "environment": env,
                "enforcement": v.enforcement,
                "server": v.server,
                "urn": v.urn,
            },
        }
        for v in violations
    ]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "mcpfleet-policy", "rules": driver_rules}},
                "automationDetails": {"id": f"mcpfleet-policy/{env}"},
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def render_junit(env: str, violations: Sequence[Violation], rules: Sequence[Rule]) -> str:
    """One test case per rule: it fails on a mandatory violation; advisory ones are reported as output."""
    by_rule: dict[str, list[Violation]] = {}
    for v in violations:
        by_rule.setdefault(v.rule_id, []).append(v)
    failures = sum(1 for rule in rules if any(v.mandatory for v in by_rule.get(rule.id, [])))
    suite = ElementTree.Element(
        "testsuite",
        {
            "name": f"mcpfleet-policy.{env}",
            "tests": str(len(rules)),
            "failures": str(failures),
            "errors": "0",
        },
    )
    for rule in rules:
        case = ElementTree.SubElement(suite, "testcase", {"classname": f"policy.{env}", "name": rule.id})
        found = by_rule.get(rule.id, [])
        blocking = [v for v in found if v.mandatory]
        if blocking:
            failure = ElementTree.SubElement(
                case, "failure", {"message": f"{len(blocking)} mandatory violation(s)", "type": rule.severity}
            )
            failure.text = "\n".join(v.describe() for v in blocking)
        advisory = [v for v in found if not v.mandatory]
        if advisory:
            ElementTree.SubElement(case, "system-out").text = "\n".join(v.describe() for v in advisory)
    ElementTree.indent(suite)
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
