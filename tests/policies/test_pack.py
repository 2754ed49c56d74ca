"""The pack as `pulumi preview --policy-pack policies` loads it, checked without starting it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import PolicyCustomTimeouts

from mcpfleet.model import ENVIRONMENTS, EnvName
from policies.configfiles import config_path, enforcement_level, load_config, render_config
from policies.pack import PACK_NAME, build_policies, plain
from policies.rules import all_rules
from policies.rules._examples import C0, deployment
from policies.rules._framework import LEVELS, SEVERITIES

PACK = Path(__file__).resolve().parents[2] / "policies"


def test_main_only_builds_and_serves_the_pack() -> None:
    """Parsed, never imported: importing it would block on the gRPC server."""
    tree = ast.parse((PACK / "__main__.py").read_text(encoding="utf-8"))
    calls = [n.value for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
    pack_calls = [c for c in calls if isinstance(c.func, ast.Name) and c.func.id == "PolicyPack"]
    assert len(pack_calls) == 1
    keywords = {k.arg for k in pack_calls[0].keywords}
    assert {"name", "policies", "enforcement_level"} <= keywords
    allowed = (ast.Import, ast.ImportFrom, ast.Expr)
    assert all(isinstance(node, allowed) for node in tree.body), "__main__.py does more than build the pack"


def test_policy_project_file() -> None:
    project = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert project["runtime"]["name"] == "python"
    assert project["description"]
    assert (PACK.parent / project["runtime"]["options"]["virtualenv"].removeprefix("../")).name == ".venv"


def test_metadata() -> None:
    policies = build_policies()
    names = [p.name for p in policies]
    assert len(names) == len(set(names)) == len(all_rules())
    assert PACK_NAME == "mcpfleet"
    for rule, policy in zip(all_rules(), policies, strict=True):
        assert policy.name == rule.id and policy.name != "all"
        assert rule.description and rule.remediation and rule.version
        assert rule.severity in SEVERITIES
        assert set(rule.enforcement) == set(ENVIRONMENTS)
        assert all(level in LEVELS for level in rule.enforcement.values())
        # Levels come from the environment's config file, never from code.
        assert policy.enforcement_level is None
        expected = ResourceValidationPolicy if rule.kind == "resource" else StackValidationPolicy
        assert isinstance(policy, expected)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_config_files_agree_with_rules(environment: EnvName) -> None:
    on_disk = json.loads(config_path(environment).read_text(encoding="utf-8"))
    assert on_disk == render_config(environment), "run: python -m policies.configfiles"
    config = load_config(environment)
    for rule in all_rules():
        assert enforcement_level(config, rule.id) == rule.enforcement[environment]
        # The engine accepts these values.
        EnforcementLevel(on_disk[rule.id]["enforcementLevel"])


def test_default_enforcement() -> None:
    levels = {env: enforcement_level(load_config(env), "pod-no-privileged") for env in ENVIRONMENTS}
    assert levels == {"local": "advisory", "dev": "advisory", "staging": "mandatory", "prod": "mandatory"}
    digest = {env: enforcement_level(load_config(env), "image-pinned-by-digest") for env in ENVIRONMENTS}
    assert digest == {"local": "advisory", "dev": "advisory", "staging": "advisory", "prod": "mandatory"}


def test_all_and_string_entries() -> None:
    assert (
        enforcement_level({"all": "disabled", "pod-no-privileged": "mandatory"}, "pod-no-privileged")
        == "mandatory"
    )
    assert enforcement_level({"all": {"enforcementLevel": "disabled"}}, "pod-no-privileged") == "disabled"
    assert enforcement_level({}, "pod-no-privileged") == "advisory"


class Reports:
    """A report_violation callback that keeps what it was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, message: str, urn: str | None = None) -> None:
        self.seen.append((message, urn))


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def test_resource_policy_reports_through_the_engine_args() -> None:
    policy = {p.name: p for p in build_policies()}["pod-no-privileged"]
    assert isinstance(policy, ResourceValidationPolicy)
    bad = deployment({f"{C0}.securityContext.privileged": True})
    reports = Reports()
    args = ResourceValidationArgs(bad.type, bad.inputs, "urn:x", bad.name, _options(), None, {})
    policy.validate(args, reports)
    reported = reports.seen
    assert len(reported) == 1
    assert "privileged" in reported[0][0] and "Fix:" in reported[0][0]


def test_policies_read_config_and_stack_resources() -> None:
    policy = {p.name: p for p in build_policies()}["service-no-external-exposure"]
    assert isinstance(policy, ResourceValidationPolicy)
    inputs = {
        "kind": "Service",
        "metadata": {"name": "alpha", "namespace": "team"},
        "spec": {"type": "NodePort"},
    }
    args = ResourceValidationArgs(
        "kubernetes:core/v1:Service",
        inputs,
        "urn:x",
        "alpha",
        _options(),
        None,
        {"allowedServices": ["team/alpha"]},
    )
    reports = Reports()
    policy.validate(args, reports)
    assert reports.seen == []

    monitoring = {p.name: p for p in build_policies()}["server-monitoring"]
    assert isinstance(monitoring, StackValidationPolicy)
    server = PolicyResource("mcpfleet:index:McpServer", {}, "urn:s", "alpha", _options(), None, None, [], {})
    found = Reports()
    monitoring.validate(StackValidationArgs([server], {}), found)
    assert found.seen and found.seen[0][1] == "urn:s" and "alpha" in found.seen[0][0]


def test_plain_turns_engine_unknowns_into_the_plan_placeholder() -> None:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    props = unknown_checking_proxy({"a": UNKNOWN_STRING_VALUE, "b": [1.0, {"c": UNKNOWN_STRING_VALUE}]})
    assert plain(props) == {"a": "(known after apply)", "b": [1, {"c": "(known after apply)"}]}
