"""Bad input through the commands themselves: exit 1, the file and field named, no traceback, nothing
written, and a pasted secret in no output at all (stdout, stderr, or any file the command leaves).

Fixture catalogs only; the stack files are copies of the repository's (tests/conftest.py stacks_dir).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mcpfleet.cli.main import app
from mcpfleet.model import ENVIRONMENTS
from tests.catalog.test_secretscan import TOKENS
from tests.conftest import REPO, minimal_server

runner = CliRunner()
EVERYWHERE: dict[str, dict[str, Any]] = {env: {} for env in ENVIRONMENTS}


@pytest.fixture(autouse=True)
def in_repo() -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(REPO)
    yield
    os.chdir(previous)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def dump(entry: dict[str, Any]) -> str:
    return yaml.safe_dump(entry, sort_keys=False, width=10_000)


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, run from workdir: what a user's terminal and CI logs get."""
    return subprocess.run(
        [sys.executable, "-m", "mcpfleet", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )


def files_holding(root: Path, literal: str, skip: Path) -> list[Path]:
    needle = literal.encode()
    return [
        path
        for path in sorted(root.rglob("*"))
        if path.is_file() and path != skip and needle in path.read_bytes()
    ]


# A pasted secret


def test_a_plan_without_the_secret_writes_build(tmp_path: Path, catalog_dir: Callable[..., Path]) -> None:
    # The baseline the refusals below are measured against: the same entry, minus the secret, plans.
    catalog = catalog_dir(alpha=dump(minimal_server("alpha", environments=EVERYWHERE)))
    done = run(
        tmp_path, "plan", "--env", "local", "--catalog", str(catalog), "--stacks", str(REPO / "stacks")
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "build" / "local" / "resources.json").is_file()


@pytest.mark.parametrize(
    "token_name", ["github fine-grained PAT", "AWS secret access key", "OpenAI project key"]
)
def test_a_pasted_secret_is_refused_by_every_command_in_every_environment_and_shown_nowhere(
    tmp_path: Path, catalog_dir: Callable[..., Path], stacks_dir: Path, token_name: str
) -> None:
    token = TOKENS[token_name][0]
    catalog = catalog_dir(
        alpha=dump(minimal_server("alpha", environments=EVERYWHERE, env={"UPSTREAM_API_KEY": token}))
    )
    entry = catalog / "servers" / "alpha.yaml"
    workdir = tmp_path / "work"
    workdir.mkdir()
    commands = [["validate"]] + [["plan", "--env", env] for env in ENVIRONMENTS]
    for command in commands:
        done = run(workdir, *command, "--catalog", str(catalog), "--stacks", str(stacks_dir))
        output = done.stdout + done.stderr
        assert done.returncode == 1, (command, output)
        assert "Traceback" not in output
        assert (
            "alpha.yaml:" in done.stderr
            and "env.UPSTREAM_API_KEY: looks like a literal secret" in done.stderr
        )
        assert token not in output
    # Nothing planned, and the token in no file but the entry itself.
    assert not (workdir / "build").exists()
    assert files_holding(tmp_path, token, skip=entry) == []


def test_a_secret_value_field_is_refused_with_the_commands_that_store_it(
    tmp_path: Path, catalog_dir: Callable[..., Path]
) -> None:
    token = TOKENS["Slack bot token"][0]
    refs = [{"key": "chat/bot-token", "env": "SLACK_BOT_TOKEN", "value": token}]
    catalog = catalog_dir(alpha=dump(minimal_server("alpha", secrets=refs)))
    out = tmp_path / "out"
    code, stdout, stderr = invoke("plan", "--env", "dev", "--catalog", str(catalog), "--out", str(out))
    assert code == 1 and "Traceback" not in stdout + stderr
    assert "alpha.yaml:" in stderr and "secrets[0].value: secret values never go in the catalog" in stderr
    assert "aws secretsmanager put-secret-value --secret-id mcpfleet/<env>/chat/bot-token" in stderr
    assert (
        "pulumi config set --secret --type string --path 'mcpfleet:secrets.chat/bot-token' -s local" in stderr
    )
    assert "unknown field" not in stderr
    assert token not in stdout + stderr
    assert not out.exists()


def test_new_refuses_to_write_a_pasted_secret(tmp_path: Path) -> None:
    token = TOKENS["Google API key"][0]
    (tmp_path / "catalog" / "servers").mkdir(parents=True)
    code, stdout, stderr = invoke(
        "new",
        "alpha",
        "--image",
        "ghcr.io/example/alpha:" + "0123456789abcdef" * 2 + "01234567",
        "--repository",
        "https://github.com/example/alpha",
        "--contact",
        f"https://hooks.example.com/notify?key={token}",
        "--catalog",
        str(tmp_path / "catalog"),
    )
    assert code == 1 and "Traceback" not in stdout + stderr
    assert "--contact: looks like a literal secret (gitleaks rule gcp-api-key)" in stderr
    # A commit id as the image tag (and so the version) is not a secret.
    assert "--image" not in stderr
    assert token not in stdout + stderr
    assert list((tmp_path / "catalog" / "servers").iterdir()) == []


# Two servers, one store key: validate passed it and plan printed a traceback (issue 12).


def shared_key_catalog(catalog_dir: Callable[..., Path]) -> Path:
    refs = [{"key": "search/api-key", "env": "SEARCH_API_KEY"}]
    return catalog_dir(
        alpha=dump(minimal_server("alpha", secrets=refs)), beta=dump(minimal_server("beta", secrets=refs))
    )


@pytest.mark.parametrize("command", [["validate"], ["plan", "--env", "dev"], ["plan", "--env", "local"]])
def test_two_servers_sharing_a_store_key_are_refused_without_a_traceback(
    tmp_path: Path, catalog_dir: Callable[..., Path], command: list[str]
) -> None:
    out = ["--out", str(tmp_path / "out")] if command[0] == "plan" else []
    code, stdout, stderr = invoke(*command, "--catalog", str(shared_key_catalog(catalog_dir)), *out)
    assert code == 1 and "Traceback" not in stdout + stderr
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        assert f"{name}.yaml:" in stderr
        assert f"secrets[0].key: store key 'search/api-key' is also referenced by {other}" in stderr
    assert not (tmp_path / "out").exists()


# Other input the program raised on after validate had passed it. Each case: what is written, the
# environment planned, and what the refusal must say (file and field).


def stack_edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path, str], None]:
    def edit(stacks: Path, env: str) -> None:
        path = stacks / f"Pulumi.{env}.yaml"
        document = yaml.safe_load(path.read_text())
        change(document["config"]["mcpfleet:environment"])
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    return edit


def cluster(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda settings: settings["cluster"].update(values)


CASES: dict[str, tuple[list[dict[str, Any]], Callable[[Path, str], None] | None, str, list[str]]] = {
    "a team whose namespace is the gateway's": (
        [minimal_server("alpha", owner={"team": "gateway", "contact": "gw@example.com"})],
        None,
        "dev",
        ["alpha.yaml: owner.team:", "'mcp-gateway'", "gateway's namespace"],
    ),
    "a team whose namespace is the monitoring one": (
        [minimal_server("alpha", owner={"team": "monitoring", "contact": "m@example.com"})],
        stack_edit(lambda settings: settings.update(namespacePrefix="")),
        "dev",
        ["alpha.yaml: owner.team:", "monitoring namespace"],
    ),
    "a team on a namespace the platform owns": (
        [minimal_server("alpha", owner={"team": "kube-system", "contact": "k@example.com"})],
        stack_edit(lambda settings: settings.update(namespacePrefix="")),
        "dev",
        ["alpha.yaml: owner.team:", "'kube-system'"],
    ),
    "one namespace for the gateway and monitoring": (
        [minimal_server("alpha")],
        stack_edit(lambda settings: settings.update(gatewayNamespace="monitoring")),
        "dev",
        ["Pulumi.dev.yaml: config.mcpfleet:environment.gatewayNamespace:", "also the monitoring namespace"],
    ),
    "a server named as another's gateway endpoints Service": (
        [minimal_server("alpha"), minimal_server("alpha-gateway")],
        None,
        "dev",
        ["alpha-gateway.yaml: name:", "endpoints Service of server 'alpha'"],
    ),
    "two cloud secrets with one resource name": (
        [
            minimal_server("a", secrets=[{"key": "b-secret-k", "env": "K"}]),
            minimal_server("a-secret-b", secrets=[{"key": "k", "env": "K"}]),
        ],
        None,
        "dev",
        ["a.yaml:", "a-secret-b.yaml:", "secrets[0].key:", "'a-secret-b-secret-k'"],
    ),
    "a server selected twice by a stack": (
        [minimal_server("alpha")],
        stack_edit(lambda settings: settings.update(servers=["alpha", "alpha"])),
        "local",
        ["Pulumi.local.yaml: config.mcpfleet:environment.servers[1]: 'alpha' is listed twice"],
    ),
    "a CIDR octet over 255": (
        [minimal_server("alpha", egress=[{"cidr": "999.1.1.0/24", "ports": [443]}])],
        None,
        "local",
        ["alpha.yaml:", "egress[0].cidr:"],
    ),
    "a VPC too small for six subnets": (
        [minimal_server("alpha")],
        stack_edit(cluster(vpcCidr="10.10.0.0/26")),
        "dev",
        ["Pulumi.dev.yaml:", "cluster.vpcCidr: must be a /16 to /25"],
    ),
    "a VPC CIDR with host bits": (
        [minimal_server("alpha")],
        stack_edit(cluster(vpcCidr="10.10.0.1/16")),
        "dev",
        ["cluster.vpcCidr: has host bits set: the network is 10.10.0.0/16"],
    ),
    "a node group mixing arm64 and x86_64": (
        [minimal_server("alpha")],
        stack_edit(
            lambda settings: settings["cluster"]["nodeGroup"].update(instanceTypes=["t3.large", "m7g.large"])
        ),
        "dev",
        ["Pulumi.dev.yaml:", "cluster.nodeGroup.instanceTypes: instanceTypes mix arm64"],
    ),
    "a region outside the aws partition": (
        [minimal_server("alpha")],
        stack_edit(
            cluster(region="cn-north-1", availabilityZones=["cn-north-1a", "cn-north-1b", "cn-north-1c"])
        ),
        "dev",
        ["Pulumi.dev.yaml:", "cluster.region: is outside the `aws` partition"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_input_the_program_raised_on_is_refused_by_validate_and_plan(
    tmp_path: Path, catalog_dir: Callable[..., Path], stacks_dir: Path, case: str
) -> None:
    servers, edit, env, expected = CASES[case]
    catalog = catalog_dir(
        **{server["name"]: dump({**server, "environments": EVERYWHERE}) for server in servers}
    )
    if edit is not None:
        edit(stacks_dir, env)
    out = tmp_path / "out"
    for command in (["validate"], ["plan", "--env", env, "--out", str(out)]):
        code, stdout, stderr = invoke(*command, "--catalog", str(catalog), "--stacks", str(stacks_dir))
        assert code == 1, (command, stdout, stderr)
        assert "Traceback" not in stdout + stderr
        for text in expected:
            assert text in stderr, (command, text, stderr)
    assert not out.exists()


def test_the_names_validate_reserves_are_those_the_program_uses() -> None:
    """Validation keeps its own copy of names the components derive (it may not import them): they agree."""
    from components.addons import CERT_MANAGER_NAMESPACE, LBC_NAMESPACE, METRICS_SERVER_NAMESPACE
    from components.manifests.gateway import endpoints_service_name
    from components.manifests.mesh import ISTIO_NAMESPACE
    from components.manifests.secrets import ESO_NAMESPACE
    from mcpfleet.fleet import ENDPOINTS_SUFFIX, RESERVED_NAMESPACES
    from tests.components.test_mesh import golden_server

    platform = {
        CERT_MANAGER_NAMESPACE,
        LBC_NAMESPACE,
        METRICS_SERVER_NAMESPACE,
        ISTIO_NAMESPACE,
        ESO_NAMESPACE,
    }
    assert platform <= set(RESERVED_NAMESPACES)
    server = golden_server("search", "dev")
    assert endpoints_service_name(server) == f"{server.name}{ENDPOINTS_SUFFIX}"


def test_the_cloud_secret_resource_name_validate_checks_is_the_programs(
    catalog_dir: Callable[..., Path],
) -> None:
    from mcpfleet.catalog.models import secret_resource_name
    from mcpfleet.plan.run import plan

    refs = [{"key": "alpha/api-key", "env": "API_KEY"}]
    catalog = catalog_dir(alpha=dump(minimal_server("alpha", secrets=refs)))
    result = plan("dev", catalog, REPO / "stacks", None, processes=1)
    names = [
        r.urn.rsplit("::", 1)[1] for r in result.registrations if r.type == "aws:secretsmanager/secret:Secret"
    ]
    assert names == [secret_resource_name("alpha", "alpha/api-key")]
