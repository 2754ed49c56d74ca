"""Deploy readiness: GIVEN a stack file that plans, THEN a value only its owner can give that is missing is
refused by `mcpfleet validate` and `pulumi up`, and one still at the shipped example is a warning for
`mcpfleet validate` (exit 0: a server owner's pull request stays green) and refused by `mcpfleet validate
--deploy` and `pulumi up`; each names the setting, its line and the exact command that sets it; a plan and a
preview accept the examples. The deploy workflow checks readiness per environment before its preview."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import settings as pulumi_settings
from typer.testing import CliRunner

from components.program import fleet_program
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.cli.main import app
from mcpfleet.errors import InvalidInput
from mcpfleet.stacks.deploy import cidr_problem, deploy_problems, is_reserved_domain
from mcpfleet.stacks.loader import environment_from_config, load_stack_config, stack_deploy_problems
from mcpfleet.stacks.models import CONFIG_KEY
from tests.conftest import minimal_server
from tests.mock_engine import Echo
from tests.sample import SAMPLE_CATALOG, sample_catalog

REPO = Path(__file__).resolve().parents[2]
EKS = ("dev", "staging", "prod")
# What a platform team would set (test values: an account and addresses nobody documented as examples).
OWN_ADMIN = "arn:aws:iam::210987654321:role/platform-admin"
OWN_CIDR = "34.240.17.8/32"
OWN_ZONE = "Z04517273QK2W3ZLDQ3PX"
OWN_REPOSITORY = "ghcr.io/acme-corp/mcpfleet-router"
OWN_ISSUER = "https://login.acme-corp.dev/"
ENVIRONMENTS = ("local", *EKS)


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


def set_nested(stacks_dir: Path, env: str, path: tuple[str, ...], value: Any) -> None:
    file = stacks_dir / f"Pulumi.{env}.yaml"
    document = yaml.safe_load(file.read_text(encoding="utf-8"))
    node = document["config"][CONFIG_KEY]
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def configure(stacks_dir: Path, env: str) -> None:
    """The values README's first-deploy steps set, for env."""
    set_nested(stacks_dir, env, ("router", "imageRepository"), OWN_REPOSITORY)
    if env == "local":
        return
    edit(
        stacks_dir,
        env,
        {"domain": f"mcp.{env}.platform.acme-corp.dev", "dns": {"hostedZoneId": OWN_ZONE}},
        {"adminPrincipalArns": [OWN_ADMIN], "endpointPublicAccessCidrs": [OWN_CIDR]},
    )
    set_nested(stacks_dir, env, ("gateway", "auth", "issuer"), OWN_ISSUER)


@pytest.fixture
def configured(stacks_dir: Path) -> Path:
    for env in ENVIRONMENTS:
        configure(stacks_dir, env)
    return stacks_dir


def problems_of(stacks_dir: Path, env: str, only: str | None = None) -> dict[str, str]:
    _, settings = load_stack_config(stacks_dir, env)
    found = stack_deploy_problems(stacks_dir, env, settings, only)  # type: ignore[arg-type]
    return {p.field or "": p.message for p in found}


# The shipped stack files: plannable, not deployable

PREFIX = f"config.{CONFIG_KEY}."


@pytest.mark.parametrize("env", EKS)
def test_shipped_examples_are_refused_each_with_its_command(env: str) -> None:
    found = problems_of(REPO / "stacks", env)
    assert set(found) == {
        f"{PREFIX}cluster.adminPrincipalArns[0]",
        f"{PREFIX}cluster.endpointPublicAccessCidrs[0]",
        f"{PREFIX}dns.hostedZoneId",
        f"{PREFIX}domain",
        f"{PREFIX}gateway.auth.issuer",
        f"{PREFIX}router.imageRepository",
    }
    for field, message in found.items():
        setting = field.removeprefix(PREFIX)
        assert f"pulumi config set --path '{CONFIG_KEY}.{setting}' " in message
        assert message.endswith(f" -s {env}")
    assert "documentation account" in found[f"{PREFIX}cluster.adminPrincipalArns[0]"]
    assert "RFC 5737" in found[f"{PREFIX}cluster.endpointPublicAccessCidrs[0]"]
    # Every one is a shipped example, none a missing value: a plain validate only warns.
    assert problems_of(REPO / "stacks", env, "missing") == {}
    assert problems_of(REPO / "stacks", env, "example") == found


def test_local_needs_only_its_router_repository() -> None:
    found = problems_of(REPO / "stacks", "local")
    assert list(found) == [f"{PREFIX}router.imageRepository"]
    assert "release-router.yml" in found[f"{PREFIX}router.imageRepository"]
    assert problems_of(REPO / "stacks", "local", "missing") == {}


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
        "GITHUB_OWNER": "acme-corp",
        "YOUR_IDENTITY_PROVIDER": "login.acme-corp.dev",
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
        (
            {},
            {
                "gateway": {
                    "auth": {"issuer": "https://id.example.net/"},
                    "tls": "cert-manager",
                    "clusterIssuer": "le",
                }
            },
            "gateway.auth.issuer",
            "no real token names it",
        ),
        (
            {},
            {"router": {"imageRepository": "ghcr.io/example/router"}},
            "router.imageRepository",
            "release-router.yml",
        ),
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


@pytest.mark.parametrize(
    ("cluster", "change", "kind"),
    [
        ({"adminPrincipalArns": None}, {}, "missing"),
        ({"adminPrincipalArns": ["arn:aws:iam::111122223333:role/admin"]}, {}, "example"),
        ({"endpointPublicAccessCidrs": None}, {}, "missing"),
        ({"endpointPublicAccessCidrs": ["198.51.100.0/24"]}, {}, "example"),
        ({"endpointPublicAccessCidrs": ["0.0.0.0/0"]}, {}, "missing"),
        ({"endpointPublicAccessCidrs": ["10.0.0.0/8"]}, {}, "missing"),
        ({}, {"dns": None}, "missing"),
        ({}, {"dns": {"hostedZoneId": "Z3M3LMPEXAMPLE"}}, "example"),
        ({}, {"domain": "mcp.example.org"}, "example"),
        ({}, {"domain": "mcp.internal.test"}, "missing"),
    ],
)
def test_a_value_nobody_could_deploy_with_is_missing_a_shipped_example_is_an_example(
    configured: Path, cluster: dict[str, Any], change: dict[str, Any], kind: str
) -> None:
    edit(configured, "prod", change, cluster)
    assert len(problems_of(configured, "prod", kind)) == 1
    assert problems_of(configured, "prod", "example" if kind == "missing" else "missing") == {}


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


@sample_catalog
def test_validate_warns_about_the_shipped_examples_and_passes(in_repo: None) -> None:
    # What `make validate` runs on every pull request: a server owner's change must not be red for the
    # platform's stack settings.
    result = CliRunner().invoke(app, ["validate", "--catalog", str(SAMPLE_CATALOG)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("catalog ok:")
    warnings = [
        line for line in result.stderr.splitlines() if line.startswith("warning: not deployable yet: ")
    ]
    assert "error" not in result.stderr and "Traceback" not in result.stderr
    for env in EKS:
        assert [
            line
            for line in warnings
            if f"stacks/Pulumi.{env}.yaml:" in line
            and f"pulumi config set --path '{CONFIG_KEY}.cluster.adminPrincipalArns[0]'" in line
        ]
    assert [line for line in warnings if "Pulumi.local.yaml" in line and "router.imageRepository" in line]
    assert "mcpfleet validate --env <env> --deploy" in result.stderr


@sample_catalog
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_validate_deploy_refuses_the_shipped_examples(in_repo: None, env: str) -> None:
    result = CliRunner().invoke(app, ["validate", "--catalog", str(SAMPLE_CATALOG), "--env", env, "--deploy"])
    assert result.exit_code == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert f"stacks/Pulumi.{env}.yaml:" in result.stderr
    assert f"pulumi config set --path '{CONFIG_KEY}.router.imageRepository'" in result.stderr
    assert f" -s {env}" in result.stderr
    assert not [line for line in result.stderr.splitlines() if "Pulumi." in line and env not in line]


@sample_catalog
def test_validate_refuses_an_eks_stack_without_an_admin_principal(in_repo: None, configured: Path) -> None:
    # Issue 11's acceptance: a missing value is an error for a plain validate too, naming setting and command.
    edit(configured, "dev", {}, {"adminPrincipalArns": None})
    for extra in ([], ["--deploy"]):
        command = ["validate", "--catalog", str(SAMPLE_CATALOG), "--stacks", str(configured), *extra]
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1, result.stdout
        assert "Traceback" not in result.stdout + result.stderr
        [line] = [line for line in result.stderr.splitlines() if "adminPrincipalArns" in line]
        assert "Pulumi.dev.yaml:" in line and "no IAM principal gets cluster admin" in line
        assert (
            f"set it with: pulumi config set --path '{CONFIG_KEY}.cluster.adminPrincipalArns[0]'"
            " arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME -s dev" in line
        )


@sample_catalog
def test_validate_accepts_configured_stacks(in_repo: None, configured: Path) -> None:
    for extra in ([], ["--deploy"]):
        command = ["validate", "--catalog", str(SAMPLE_CATALOG), "--stacks", str(configured), *extra]
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith("catalog ok:")
        assert result.stderr == ""


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
        "router.imageRepository",
        "cluster.adminPrincipalArns[0]",
        "cluster.endpointPublicAccessCidrs[0]",
        "dns.hostedZoneId",
        "domain",
        "gateway.auth.issuer",
    ]


@sample_catalog
def test_validate_one_environment_checks_only_its_stack(in_repo: None) -> None:
    # Deploying local first needs no AWS value: the EKS stacks' examples do not stand in its way.
    local = CliRunner().invoke(app, ["validate", "--catalog", str(SAMPLE_CATALOG), "--env", "local"])
    assert local.exit_code == 0, local.stderr
    assert local.stdout.rstrip().rsplit("per environment: ", 1)[1].startswith("local: ")
    assert "dev:" not in local.stdout
    dev = CliRunner().invoke(app, ["validate", "--catalog", str(SAMPLE_CATALOG), "--env", "dev", "--deploy"])
    assert dev.exit_code == 1
    assert "Pulumi.dev.yaml" in dev.stderr and "Pulumi.prod.yaml" not in dev.stderr


def run_program_as(
    env: str,
    stacks_dir: Path,
    preview: bool,
    values: dict[str, str] | None = None,
    catalog: Path = SAMPLE_CATALOG,
) -> BaseException | None:
    """The real program (components/program.py) under mocks, as `pulumi preview` or `pulumi up` runs it;
    values: the local stack's secret values (default: one for every secret the catalog's servers read)."""
    config, _ = load_stack_config(stacks_dir, env)
    _, settings = load_stack_config(stacks_dir, env)
    config = {
        **config,
        "mcpfleet:catalogDir": str(catalog),
        "mcpfleet:grafanaAdminPassword": "test password",
        "mcpfleet:gatewayJwtPublicKey": "test key",
        "mcpfleet:routerSessionKeys": "test keys",
        "mcpfleet:routerImage": f"{settings.router.image_repository}@sha256:{'0' * 64}",
        "mcpfleet:secrets": values
        if values is not None
        else {
            ref.key: "test value" for entry in load_catalog(catalog).entries for ref in entry.server.secrets
        },
    }
    pulumi.runtime.set_all_config(
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    )
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(Echo(), project="mcpfleet", stack=env, preview=preview)
    try:
        pulumi.runtime.test(fleet_program)()  # type: ignore[no-untyped-call]
    except pulumi.RunError as exc:
        return exc
    finally:
        pulumi_settings.ROOT.set(None)
    return None


@sample_catalog
def test_the_program_refuses_the_shipped_router_repository_at_up_only(in_repo: None) -> None:
    # local has no AWS value to set: its one shipped example is where the router's image comes from.
    assert run_program_as("local", REPO / "stacks", preview=True) is None
    refused = run_program_as("local", REPO / "stacks", preview=False)
    assert refused is not None
    assert "router.imageRepository" in str(refused) and "-s local" in str(refused)


@sample_catalog
def test_the_program_deploys_a_configured_local_stack(in_repo: None, configured: Path) -> None:
    assert run_program_as("local", configured, preview=False) is None


# The deploy workflow: readiness per environment before anything touches a cloud


def test_each_deploy_job_checks_its_stack_is_ready_before_its_preview() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8"))
    for env in EKS:
        steps = workflow["jobs"][env]["steps"]
        runs = [step.get("run", "") for step in steps]
        ready = runs.index(f".venv/bin/mcpfleet validate --env {env} --deploy")
        assert runs.index("make validate") < ready  # make creates .venv first
        preview = next(i for i, step in enumerate(steps) if step.get("with", {}).get("command") == "preview")
        assert ready < preview


def test_deploy_runs_on_runners_whose_addresses_the_stack_lists() -> None:
    text = (REPO / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    for env in EKS:
        assert workflow["jobs"][env]["runs-on"] == "${{ vars.DEPLOY_RUNNER || 'ubuntu-24.04' }}"
    # The header says what the variable must name and why.
    assert "DEPLOY_RUNNER" in text and "endpointPublicAccessCidrs" in text and "static addresses" in text


def test_local_names_every_missing_secret_value_at_once_before_creating_anything(
    in_repo: None, configured: Path, catalog_dir: Callable[..., Path]
) -> None:
    # Servers of the test's own that read secrets on local: three values, one given.
    reads = {"alpha": ["alpha/token"], "beta": ["beta/token", "beta/password"]}
    catalog = catalog_dir(
        **{
            name: minimal_server(
                name,
                secrets=[{"key": key, "env": f"SECRET_{index}"} for index, key in enumerate(keys)],
                environments={"local": {}},
            )
            for name, keys in reads.items()
        }
    )
    references = [(name, key) for name, keys in reads.items() for key in keys]
    first_key = references[0][1]
    refused = run_program_as(
        "local", configured, preview=False, values={first_key: "test value"}, catalog=catalog
    )
    assert isinstance(refused, pulumi.RunError)
    text = str(refused)
    for server, key in references[1:]:
        assert f"server '{server}' needs secret '{key}'" in text
        assert f"pulumi config set --secret --type string --path 'mcpfleet:secrets.{key}' -s local" in text
    assert f"needs secret '{first_key}'" not in text
    assert "test value" not in text
