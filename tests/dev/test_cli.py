"""`mcpfleet dev` in-process: the dry run's plan, and refusals with their exit codes (no traceback)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mcpfleet.cli.main import app
from tests.conftest import REPO

runner = CliRunner()
FAKE_TOOLS = {"npx": "/opt/node/bin/npx", "haproxy": "/usr/sbin/haproxy"}
SECRETS = (
    "BRAVE_API_KEY",
    "CONTEXT7_API_KEY",
    "GRAFANA_SERVICE_ACCOUNT_TOKEN",
    "NOTION_TOKEN",
    "DATABASE_URI",
    "REDIS_PWD",
)


@pytest.fixture(autouse=True)
def this_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In the repository, with npx and haproxy but no uvx, and none of the catalog's secrets set."""
    monkeypatch.setattr(shutil, "which", FAKE_TOOLS.get)
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    previous = Path.cwd()
    os.chdir(REPO)
    yield
    os.chdir(previous)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["dev", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_dry_run_of_the_sample_catalog() -> None:
    code, out, err = invoke("--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "local: 16 servers enabled; 6 would start here"
    started = re.findall(
        r"^  (\S+)  \((stdio|streamable-http|sse)\) on 127\.0\.0\.1:\d+/mcp$", out, re.MULTILINE
    )
    assert started == [
        ("everything", "streamable-http"),
        ("filesystem", "stdio"),
        ("kubernetes", "streamable-http"),
        ("memory", "stdio"),
        ("playwright", "streamable-http"),
        ("sequential-thinking", "stdio"),
    ]
    assert (
        "    $ /opt/node/bin/npx -y @modelcontextprotocol/server-everything@2026.8.31 streamableHttp" in lines
    )
    skipped = lines[lines.index("skipped (10):") + 1 : lines.index("skipped (10):") + 11]
    assert skipped == [
        "  brave-search: needs secret BRAVE_API_KEY (not set here)",
        "  context7: needs secret CONTEXT7_API_KEY (not set here)",
        "  fetch: pypi package mcp-server-fetch==2026.10.24 needs uvx (pip install uv), not found",
        "  github: no published package in its catalog entry; it runs only from its image"
        " ghcr.io/github/github-mcp-server:v1.11.0",
        "  grafana: needs secret GRAFANA_SERVICE_ACCOUNT_TOKEN (not set here)",
        "  notion: needs secret NOTION_TOKEN (not set here)",
        "  postgres: needs secret DATABASE_URI (not set here)",
        "  redis: needs secret REDIS_PWD (not set here)",
        "  terraform: no published package in its catalog entry; it runs only from its image"
        " docker.io/hashicorp/terraform-mcp-server:0.5.2",
        "  time: pypi package mcp-server-time==2026.10.19 needs uvx (pip install uv), not found",
    ]
    assert "gateway: /usr/sbin/haproxy -f <config> -db, on 127.0.0.1:8080" in lines
    # The router runs from this Python, as `python -m mcpfleet.router` runs in its image.
    router = f"router: {sys.executable} -m mcpfleet.router, between the gateway and the servers (free ports)"
    assert router in lines
    # The local stack terminates TLS at the gateway (self-signed).
    assert "  https://127.0.0.1:8080/servers/everything/mcp" in lines
    assert "  https://127.0.0.1:8080/servers/github/mcp" not in lines


def test_dry_run_starts_and_writes_nothing(tmp_path: Path) -> None:
    code, _, err = invoke("--dry-run", "--run-dir", str(tmp_path / "run"))
    assert code == 0, err
    assert not (tmp_path / "run").exists()


def test_a_secret_set_in_the_shell_is_named_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXT7_API_KEY", "ctx7-very-secret")
    code, out, err = invoke("--dry-run", "--gateway-port", "9090")
    assert code == 0, err
    assert "  context7  (stdio) on 127.0.0.1:" in out
    assert "    secrets from this shell: CONTEXT7_API_KEY" in out
    assert "ctx7-very-secret" not in out + err
    assert "  https://127.0.0.1:9090/servers/context7/mcp" in out


def test_dry_run_of_the_examples_catalog() -> None:
    code, out, err = invoke("--dry-run", "--catalog", "examples/catalog")
    assert code == 0, err
    assert out.splitlines()[0] == "local: 4 servers enabled; 4 would start here"
    assert re.search(
        r"^    \$ \S*python\S* -m examples\.servers\.notes --host 127\.0\.0\.1 --port \d+$", out, re.M
    )
    assert "skipped" not in out


def test_without_haproxy_the_dry_run_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", {"npx": "/opt/node/bin/npx"}.get)
    code, out, _ = invoke("--dry-run")
    assert code == 0
    assert "gateway: haproxy (not found: apt-get install haproxy) -f <config> -db, on 127.0.0.1:8080" in out


def test_a_real_run_without_haproxy_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", {"npx": "/opt/node/bin/npx"}.get)
    code, _, err = invoke("--run-dir", str(tmp_path))
    assert code == 1
    assert err == "error: haproxy not found on PATH (Debian: apt-get install haproxy)\n"


def test_missing_catalog_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-catalog"
    code, out, err = invoke("--dry-run", "--catalog", str(missing))
    assert code == 1
    assert out == ""
    assert f"{missing / 'servers'}: catalog folder not found" in err
    assert "Traceback" not in err


def test_missing_stack_file_is_named(tmp_path: Path) -> None:
    code, _, err = invoke("--dry-run", "--stacks", str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 'Pulumi.local.yaml'}: stack file for environment 'local' not found" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["--gateway-port", "0"], "--gateway-port"),
        (["--gateway-port", "http"], "--gateway-port"),
        (["--env", "qa"], "--env"),
        (["--node", "/no/such/node"], "--node"),
        (["--start-timeout", "0"], "--start-timeout"),
    ],
)
def test_bad_flags_exit_2(args: list[str], message: str) -> None:
    code, _, err = invoke(*args, "--dry-run")
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_a_busy_gateway_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = invoke("--gateway-port", str(port), "--run-dir", str(tmp_path / "run"))
    assert code == 1
    assert err == f"error: gateway port 127.0.0.1:{port} is in use (choose another: --gateway-port)\n"
    assert not (tmp_path / "run").exists()
