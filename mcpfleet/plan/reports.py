"""The policy review of a plan, three ways: markdown for the PR, SARIF for code scanning, JUnit for CI."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from xml.etree import ElementTree

from policies.review import Violation, sort_key
from policies.rules._framework import Rule

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# How SARIF viewers rank a finding: a mandatory violation fails the change, an advisory one informs.
_SARIF_LEVEL = {"mandatory": "error", "advisory": "warning"}
_ICON = {"mandatory": "❌", "advisory": "⚠️"}
_CLEAN = "✅"


def _text(text: str) -> str:
    """Free text inside a markdown list item: one line, no HTML."""
    return " ".join(text.split()).replace("<", "&lt;")


def _counts(violations: Sequence[Violation]) -> tuple[int, int]:
    mandatory = sum(1 for v in violations if v.mandatory)
    return mandatory, len(violations) - mandatory


def _fix_line(violation: Violation, stack_file: str) -> str:
    """Where the finding is fixed and how: the server's own catalog change, else who else must act."""
    fix = _text(violation.fix or violation.remediation)
    if violation.fix_place == "catalog":
        return f"catalog change: {fix}"
    if violation.fix_place == "stack":
        return f"in `{stack_file}`: {fix}"
    # A rule about what the program renders alike for every server: its owner has nothing to change.
    return f"{'not a catalog change; ' if violation.server else ''}platform team: {fix}"


def _group(title: str, found: Sequence[Violation], entry: str | None, stack_file: str) -> list[str]:
    m, a = _counts(found)
    counted = ", ".join(text for count, text in ((m, f"{m} mandatory"), (a, f"{a} advisory")) if count)
    lines = [f"#### {title} ({counted})", ""]
    if entry:
        lines += [f"Catalog entry: `{entry}`.", ""]
    for v in found:
        lines.append(
            f"- {_ICON[v.enforcement]} **{v.enforcement}**, {v.severity}, `{v.rule_id}`: {_text(v.message)}"
        )
        lines.append(f"  - {_fix_line(v, stack_file)}")
    return [*lines, ""]


def render_markdown(
    env: str,
    violations: Sequence[Violation],
    rules: Sequence[Rule],
    resources: int,
    *,
    servers: Sequence[str] = (),
    catalog_entry: Callable[[str], str] | None = None,
    stack_file: str | None = None,
) -> str:
    """A PR comment: the verdict and the counts per server first; then each server's findings, each with
    the change in its catalog entry that fixes it; then the platform's, fixed in the stack file or by
    the platform team.

    servers: every server of the environment, so those with no finding are named too; catalog_entry:
    a server's catalog file; stack_file: the environment's stack file (defaults: the repository layout).
    """
    entry = catalog_entry or (lambda name: f"catalog/servers/{name}.yaml")
    stack = stack_file or f"stacks/Pulumi.{env}.yaml"
    mandatory, advisory = _counts(violations)
    by_server: dict[str, list[Violation]] = {}
    platform: list[Violation] = []
    for v in sorted(violations, key=sort_key):
        if v.server:
            by_server.setdefault(v.server, []).append(v)
        else:
            platform.append(v)
    # Servers with a blocking finding first, then by name.
    order = sorted(by_server, key=lambda name: (_counts(by_server[name])[0] == 0, name))
    lines = [
        f"### Policy review: `{env}` {'fails' if mandatory else 'passes'}",
        "",
        f"Findings: {mandatory} mandatory (they block the change), {advisory} advisory;"
        f" {len(rules)} rules checked over {resources} resources.",
        "",
        "| | server | mandatory | advisory | fixed in |",
        "|---|---|---|---|---|",
    ]
    for name in order:
        m, a = _counts(by_server[name])
        lines.append(f"| {_ICON['mandatory' if m else 'advisory']} | {name} | {m} | {a} | `{entry(name)}` |")
    m, a = _counts(platform)
    icon = _ICON["mandatory"] if m else _ICON["advisory"] if a else _CLEAN
    lines += [
        f"| {icon} | platform | {m} | {a} | `{stack}`, or the platform team |",
        f"| | **total** | **{mandatory}** | **{advisory}** | |",
        "",
    ]
    clean = sorted(set(servers) - set(by_server))
    if clean:
        lines += [
            f"{_CLEAN} {len(clean)} of {len(set(servers))} servers have no finding: {', '.join(clean)}.",
            "",
        ]
    for name in order:
        lines += _group(name, by_server[name], entry(name), stack)
    if platform:
        lines += _group("platform", platform, None, stack)
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
                "fixPlace": v.fix_place,
                "fix": v.fix,
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
