"""The CLI in-process: exit codes, messages on stderr, no traceback, and outputs replaced atomically."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mcpfleet.cli.main import app
from mcpfleet.plan.run import load_inputs
from tests.conftest import REPO, minimal_server
from tests.sample import SAMPLE_CATALOG, sample_catalog
from tests.stacks.test_deploy import configure

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_repo() -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(REPO)
    yield
    os.chdir(previous)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@sample_catalog
def test_validate_the_sample_catalog(stacks_dir: Path) -> None:
    # With the values only a stack's owner gives (tests/stacks/test_deploy.py: the examples are refused).
    for env in ("dev", "staging", "prod"):
        configure(stacks_dir, env)
    code, out, _ = invoke("validate", "--catalog", str(SAMPLE_CATALOG), "--stacks", str(stacks_dir))
    assert code == 0
    assert out.startswith("catalog ok:")


@sample_catalog
def test_plan_writes_manifests_and_resources(tmp_path: Path) -> None:
    code, out, err = invoke(
        "plan", "--env", "local", "--catalog", str(SAMPLE_CATALOG), "--out", str(tmp_path / "local")
    )
    assert code == 0, err
    assert "plan local:" in out and "resources" in out
    assert (tmp_path / "local" / "resources.json").is_file()
    # A manifest file per server the environment runs, whichever the sample enables there.
    _, fleet = load_inputs("local", SAMPLE_CATALOG, REPO / "stacks")
    written = {path.stem for path in (tmp_path / "local" / "manifests" / "servers").glob("*.yaml")}
    assert written == {server.name for server in fleet.servers}
    assert (tmp_path / "local" / "manifests" / "platform" / "namespaces.yaml").is_file()


def test_usage_errors_exit_2() -> None:
    assert invoke("plan", "--env", "qa")[0] == 2
    assert invoke("plan")[0] == 2
    assert invoke("plan", "--env", "dev", "--bogus")[0] == 2


def test_invalid_catalog_exits_1_naming_file_and_field(catalog_dir: Callable[..., Path]) -> None:
    root = catalog_dir(alpha=minimal_server("alpha", scaling={"replicas": -2}))
    code, out, err = invoke("validate", "--catalog", str(root))
    assert code == 1
    assert "alpha.yaml:" in err and "scaling.replicas" in err
    assert "Traceback" not in out + err


@sample_catalog
def test_refused_plan_leaves_previous_output_exactly_as_it_was(
    tmp_path: Path, catalog_dir: Callable[..., Path]
) -> None:
    out_dir = tmp_path / "out"
    assert invoke("plan", "--env", "local", "--catalog", str(SAMPLE_CATALOG), "--out", str(out_dir))[0] == 0
    before = {p: p.read_bytes() for p in sorted(out_dir.rglob("*")) if p.is_file()}
    broken = catalog_dir(alpha="name: [unclosed\n")
    code, _, err = invoke("plan", "--env", "local", "--catalog", str(broken), "--out", str(out_dir))
    assert code == 1 and "invalid YAML" in err and "Traceback" not in err
    after = {p: p.read_bytes() for p in sorted(out_dir.rglob("*")) if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_missing_catalog_folder_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = invoke("plan", "--env", "local", "--catalog", str(tmp_path / "nope"))
    assert code == 1 and "catalog folder not found" in err


@sample_catalog
def test_stack_selection_of_unknown_server_is_refused(stacks_dir: Path) -> None:
    path = stacks_dir / "Pulumi.local.yaml"
    path.write_text(path.read_text() + "    servers: [no-such-server]\n")
    code, _, err = invoke("validate", "--catalog", str(SAMPLE_CATALOG), "--stacks", str(stacks_dir))
    assert code == 1
    assert "Pulumi.local.yaml" in err and "servers[0]" in err and "no catalog server is named" in err
