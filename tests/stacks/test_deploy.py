"""Deploy readiness: GIVEN a stack file that plans, THEN `mcpfleet validate` and `pulumi up` still refuse it
while a value only its owner can give is missing or still the shipped example, naming the setting, its line
and the exact command that sets it; a plan and a preview accept the examples."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mcpfleet.cli.main import app
from mcpfleet.errors import InvalidInput
from mcpfleet.stacks.deploy import cidr_problem, deploy_problems, is_reserved_domain
from mcpfleet.stacks.loader import environment_from_config, load_stack_config, stack_deploy_problems
from mcpfleet.stacks.models import CONFIG_KEY

REPO = Path(__file__).resolve().parents[2]
EKS = ("dev", "staging", "prod")
# What a platform team would set (test values: an account and addresses nobody documented as examples).
OWN_ADMIN = "arn:aws:iam::210987654321:role/platform-admin"
OWN_CIDR = "34.240.17.8/32"
OWN_ZONE = "Z04517273QK2W3ZLDQ3PX"


def edit(stacks_dir: Path, env: str, change: dict[str, Any], cluster: dict[str, Any] | None = None) -> None:
    path = stacks_dir / f"Pulumi.{env}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    settings = document["config"][CONFIG_KEY]
    settings.update(change)
    settings["cluster"].update(cluster or {})
    for key in [k for k, v in settings.items() if v is None]:
        del settings[key]
    for key in [k for k, v in settings["cluster"].items() if v is None]:
        del settings["cluster"][key]
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def configure(stacks_dir: Path, env: str) -> None:
    """The four values README's first-deploy steps set, for env."""
    edit(
        stacks_dir,
        env,
        {"domain": f"mcp.{env}.platform.acme-corp.dev", "dns": {"hostedZoneId": OWN_ZONE}},
        {"adminPrincipalArns": [OWN_ADMIN], "endpointPublicAccessCidrs": [OWN_CIDR]},
    )


@pytest.fixture
def configured(stacks_dir: Path) -> Path:
    for env in EKS:
        configure(stacks_dir, env)
    return stacks_dir


def problems_of(stacks_dir: Path, env: str) -> dict[str, str]:
    _, settings = load_stack_config(stacks_dir, env)
    return {p.field or "": p.message for p in stack_deploy_problems(stacks_dir, env, settings)}


# The shipped stack files: plannable, not deployable


@pytest.mark.parametrize("env", EKS)
def test_shipped_examples_are_refused_each_with_its_command(env: str) -> None:
    found = problems_of(REPO / "stacks", env)
    prefix = f"config.{CONFIG_KEY}."
    assert set(found) == {
        f"{prefix}cluster.adminPrincipalArns[0]",
        f"{prefix}cluster.endpointPublicAccessCidrs[0]",
        f"{prefix}dns.hostedZoneId",
        f"{prefix}domain",
    }
    for field, message in found.items():
        setting = field.removeprefix(prefix)
        assert f"pulumi config set --path '{CONFIG_KEY}.{setting}' " in message
        assert message.endswith(f" -s {env}")
    assert "documentation account" in found[f"{prefix}cluster.adminPrincipalArns[0]"]
    assert "RFC 5737" in found[f"{prefix}cluster.endpointPublicAccessCidrs[0]"]


def test_local_needs_nothing_more() -> None:
    assert problems_of(REPO / "stacks", "local") == {}


def test_each_problem_names_the_line_of_its_setting() -> None:
    _, settings = load_stack_config(REPO / "stacks", "dev")
    lines = (REPO / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8").splitlines()
    for problem in stack_deploy_problems(REPO / "stacks", "dev", settings):
        assert problem.file.endswith("Pulumi.dev.yaml")
        assert problem.line is not None
        key = (problem.field or "").rsplit(".", 1)[-1].split("[")[0]
        assert lines[problem.line - 1].lstrip().startswith(f"{key}:"), problem


def test_the_command_sets_what_validate_then_accepts(stacks_dir: Path) -> None:
    # Apply each printed command the way `pulumi config set --path` would, with a real value for the
    # placeholder: the stack then deploys.
    values = {
        "ACCOUNT_ID": "210987654321",
        "ROLE_NAME": "platform-admin",
        "RUNNER_EGRESS_IP": "34.240.17.8",
        "HOSTED_ZONE_ID": OWN_ZONE,
        "YOUR_DOMAIN": "platform.acme-corp.dev",
    }
    path = stacks_dir / "Pulumi.dev.yaml"
    for problem in stack_deploy_problems(stacks_dir, "dev", load_stack_config(stacks_dir, "dev")[1]):
        command = shlex.split(problem.message.split("set it with: ", 1)[1])
        assert command[:4] == ["pulumi", "config", "set", "--path"]
        setting, value = command[4].removeprefix(f"{CONFIG_KEY}."), command[5]
        for placeholder, real in values.items():
            value = value.replace(placeholder, real)
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        node: Any = document["config"][CONFIG_KEY]
        *parents, last = setting.replace("[", ".").replace("]", "").split(".")
        for part in parents:
            node = node.setdefault(part, {}) if not part.isdigit() else node[int(part)]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    assert problems_of(stacks_dir, "dev") == {}


# What is refused, one setting at a time


@pytest.mark.parametrize("env", EKS)
def test_a_configured_stack_deploys(configured: Path, env: str) -> None:
    assert problems_of(configured, env) == {}


@pytest.mark.parametrize(
    ("cluster", "change", "field", "words"),
    [
        (
            {"adminPrincipalArns": None},
            {},
            "cluster.adminPrincipalArns",
            "no IAM principal gets cluster admin",
        ),
        (
            {"adminPrincipalArns": [OWN_ADMIN, "arn:aws:iam::111122223333:role/admin"]},
            {},
            "cluster.adminPrincipalArns[1]",
            "documentation account",
        ),
        ({"endpointPublicAccessCidrs": None}, {}, "cluster.endpointPublicAccessCidrs", "would be private"),
        (
            {"endpointPublicAccessCidrs": ["0.0.0.0/0"]},
            {},
            "cluster.endpointPublicAccessCidrs[0]",
            "internet",
        ),
        (
            {"endpointPublicAccessCidrs": [OWN_CIDR, "10.0.0.0/8"]},
            {},
            "cluster.endpointPublicAccessCidrs[1]",
            "not a public range",
        ),
        ({}, {"dns": None}, "dns", "no Route53 zone"),
        ({}, {"dns": {"hostedZoneId": "Z3M3LMPEXAMPLE"}}, "dns.hostedZoneId", "example zone id"),
        ({}, {"domain": "mcp.example.org"}, "domain", "reserved example name"),
        ({}, {"domain": "mcp.internal.test"}, "domain", "reserved example name"),
    ],
)
def test_one_missing_value_is_refused_by_name(
    configured: Path, cluster: dict[str, Any], change: dict[str, Any], field: str, words: str
) -> None:
    edit(configured, "prod", change, cluster)
    found = problems_of(configured, "prod")
    assert list(found) == [f"config.{CONFIG_KEY}.{field}"]
    assert words in found[f"config.{CONFIG_KEY}.{field}"]
    assert "pulumi config set --path" in found[f"config.{CONFIG_KEY}.{field}"]


def test_dns_is_refused_on_an_existing_cluster(stacks_dir: Path) -> None:
    edit(stacks_dir, "local", {"dns": {"hostedZoneId": OWN_ZONE}})
    with pytest.raises(InvalidInput, match="dns is an eks setting"):
        load_stack_config(stacks_dir, "local")


@pytest.mark.parametrize(
    ("cidr", "refused"),
    [
        ("203.0.113.10/32", True),
        ("198.51.100.0/24", True),
        ("192.0.2.0/23", True),
        ("10.1.2.3/32", True),
        ("100.64.0.1/32", True),
        ("0.0.0.0/0", True),
        ("34.240.17.8/32", False),
        ("52.16.0.0/15", False),
    ],
)
def test_cidrs(cidr: str, refused: bool) -> None:
    assert (cidr_problem(cidr) is not None) is refused


@pytest.mark.parametrize(
    ("domain", "reserved"),
    [
        ("mcp.example.com", True),
        ("example.net", True),
        ("a.b.example", True),
        ("mcp.localhost", True),
        ("mcp.notexample.com", False),
        ("mcp.example.com.au", False),
        ("mcp.platform.acme-corp.dev", False),
    ],
)
def test_reserved_domains(domain: str, reserved: bool) -> None:
    assert is_reserved_domain(domain) is reserved


# The entry points: `mcpfleet validate`, and the program under `pulumi up`


@pytest.fixture
def in_repo() -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(REPO)
    yield
    os.chdir(previous)


def test_validate_refuses_the_shipped_stacks_naming_settings_and_commands(in_repo: None) -> None:
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1
    assert "Traceback" not in result.stdout + result.stderr
    for env in EKS:
        assert (
            f"stacks/Pulumi.{env}.yaml:" in result.stderr
            and f"pulumi config set --path '{CONFIG_KEY}.cluster.adminPrincipalArns[0]'" in result.stderr
        )
    assert "Pulumi.local.yaml" not in result.stderr


def test_validate_accepts_configured_stacks(in_repo: None, configured: Path) -> None:
    result = CliRunner().invoke(app, ["validate", "--stacks", str(configured)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("catalog ok:")


def test_pulumi_up_refuses_what_a_preview_accepts() -> None:
    # components/program.py passes the stack name only when the engine is not previewing.
    config, _ = load_stack_config(REPO / "stacks", "dev")
    raw = config[CONFIG_KEY]
    assert environment_from_config(raw, "stacks/Pulumi.dev.yaml").domain == "mcp.dev.example.com"
    with pytest.raises(InvalidInput) as refused:
        environment_from_config(raw, "stacks/Pulumi.dev.yaml", "dev")
    text = str(refused.value)
    assert "stacks/Pulumi.dev.yaml: config.mcpfleet:environment.cluster.adminPrincipalArns[0]" in text
    assert "-s dev" in text


def test_deploy_problems_of_a_model_without_a_file() -> None:
    _, settings = load_stack_config(REPO / "stacks", "staging")
    assert [p.field for p in deploy_problems(settings, "staging")] == [
        "cluster.adminPrincipalArns[0]",
        "cluster.endpointPublicAccessCidrs[0]",
        "dns.hostedZoneId",
        "domain",
    ]


def test_validate_one_environment_checks_only_its_stack(in_repo: None) -> None:
    # Deploying local first needs no AWS value: the EKS stacks' examples do not stand in its way.
    local = CliRunner().invoke(app, ["validate", "--env", "local"])
    assert local.exit_code == 0, local.stderr
    assert local.stdout.rstrip().rsplit("per environment: ", 1)[1].startswith("local: ")
    assert "dev:" not in local.stdout
    dev = CliRunner().invoke(app, ["validate", "--env", "dev"])
    assert dev.exit_code == 1
    assert "Pulumi.dev.yaml" in dev.stderr and "Pulumi.prod.yaml" not in dev.stderr
