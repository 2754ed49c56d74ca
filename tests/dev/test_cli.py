"""`mcpfleet dev` in-process: the dry run's plan, the servers it skips (a reason each) and the failure of
one it started (its reason, not its usage), and refusals with their exit codes (no traceback)."""

from __future__ import annotations

import importlib.metadata
import io
import os
import re
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mcpfleet.cli import dev as dev_cli
from mcpfleet.cli.main import app
from tests.conftest import REPO, minimal_server
from tests.sample import SAMPLE_CATALOG, sample_catalog, sample_entries

runner = CliRunner()
FAKE_TOOLS = {"npx": "/opt/node/bin/npx", "haproxy": "/usr/sbin/haproxy"}


def sample_secret_variables() -> set[str]:
    """The variables the sample catalog's servers read their secrets from (a file that does not parse
    is left to the sample catalog's own tests)."""
    names: set[str] = set()
    for path in sample_entries():
        try:
            entry = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue
        secrets = entry.get("secrets") if isinstance(entry, dict) else None
        for secret in secrets if isinstance(secrets, list) else []:
            if isinstance(secret, dict) and isinstance(secret.get("env"), str):
                names.add(secret["env"])
    return names


@pytest.fixture(autouse=True)
def this_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In the repository, with npx and haproxy but no uvx, and none of the sample catalog's secrets set."""
    monkeypatch.setattr(shutil, "which", FAKE_TOOLS.get)
    for name in sample_secret_variables():
        monkeypatch.delenv(name, raising=False)
    previous = Path.cwd()
    os.chdir(REPO)
    yield
    os.chdir(previous)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["dev", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@sample_catalog
def test_dry_run_of_the_sample_catalog_accounts_for_every_server() -> None:
    # Whatever the sample catalog holds: each enabled server either starts, with its command, or is
    # skipped with a reason of one line.
    code, out, err = invoke("--dry-run", "--catalog", str(SAMPLE_CATALOG))
    assert code == 0, err
    lines = out.splitlines()
    header = re.fullmatch(r"local: (\d+) servers enabled; (\d+) would start here", lines[0])
    assert header is not None
    enabled, starting = int(header[1]), int(header[2])
    started = re.findall(r"^  (\S+)  \((?:stdio|streamable-http|sse)\) on 127\.0\.0\.1:\d+/\S*$", out, re.M)
    assert len(started) == starting
    skipped = re.findall(r"^  (\S+): (.+)$", out.split("skipped (", 1)[1], re.M) if starting < enabled else []
    skipped = [(name, reason) for name, reason in skipped if not name.startswith("https:")]
    assert len(skipped) == enabled - starting
    assert not set(started) & {name for name, _ in skipped}
    assert all("\n" not in reason and len(reason) < 200 for _, reason in skipped)
    assert "gateway: /usr/sbin/haproxy -f <config> -db, on 127.0.0.1:8080" in lines
    # The router runs from this Python, as `python -m mcpfleet.router` runs in its image.
    router = f"router: {sys.executable} -m mcpfleet.router, between the gateway and the servers (free ports)"
    assert router in lines
    # The local stack terminates TLS at the gateway (self-signed).
    # Each server started here, then the fleet endpoint over all of them.
    fleet = ["  https://127.0.0.1:8080/mcp  (fleet endpoint: every server's tools)"] if started else []
    assert [line for line in lines if line.startswith("  https://")] == [
        *(f"  https://127.0.0.1:8080/servers/{name}/mcp" for name in started),
        *fleet,
    ]


def npm(identifier: str, *arguments: str) -> dict[str, Any]:
    return {
        "registryType": "npm",
        "identifier": identifier,
        "version": "1.0.0",
        "packageArguments": [*arguments],
    }


def this_python(*arguments: str) -> dict[str, Any]:
    """A package that runs from this Python (as the examples catalog's servers do)."""
    version = importlib.metadata.version("mcpfleet")
    return {
        "registryType": "pypi",
        "identifier": "mcpfleet",
        "version": version,
        "runtimeHint": "python",
        "packageArguments": [*arguments],
    }


@pytest.fixture
def reasons(catalog_dir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A catalog with one server for each reason to skip it, and one that runs."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("ALPHA_TOKEN", raising=False)
    uvx = {"registryType": "pypi", "identifier": "beta-mcp", "version": "1.0.0", "runtimeHint": "uvx"}
    return catalog_dir(
        alpha=minimal_server(
            "alpha", packages=[npm("alpha-mcp")], secrets=[{"key": "alpha/token", "env": "ALPHA_TOKEN"}]
        ),
        beta=minimal_server("beta", packages=[uvx]),
        files=minimal_server("files", packages=[npm("files-mcp", "/srv/mcpfleet-test/data")]),
        kube=minimal_server(
            "kube",
            packages=[npm("kube-mcp", "--read-only")],
            kubernetesAccess={"read": [{"apiGroups": [""], "resources": ["pods"]}]},
        ),
        image=minimal_server("image"),
        runs=minimal_server("runs", packages=[npm("runs-mcp")], env={"PORT": "8080"}),
    )


def test_servers_that_cannot_run_here_are_skipped_with_a_reason_each(reasons: Path) -> None:
    code, out, err = invoke("--dry-run", "--catalog", str(reasons))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "local: 6 servers enabled; 1 would start here"
    assert "  runs  (streamable-http) on 127.0.0.1:" in out
    at = lines.index("skipped (5):")
    assert lines[at + 1 : at + 6] == [
        "  alpha: needs secret ALPHA_TOKEN (not set here)",
        "  beta: pypi package beta-mcp==1.0.0 needs uvx (pip install uv), not found",
        "  files: argument /srv/mcpfleet-test/data is a path in its container, which does not exist here",
        "  image: no published package in its catalog entry; it runs only from its image"
        " ghcr.io/example/image:1.2.3",
        "  kube: reads the Kubernetes API and has no kubeconfig here (KUBECONFIG is unset and ~/.kube/config"
        " is missing)",
    ]


def test_a_real_run_skips_before_it_starts_anything(
    reasons: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without npx, not even `runs` can run: the run stops before it starts or writes anything.
    monkeypatch.setattr(shutil, "which", {"haproxy": "/usr/sbin/haproxy"}.get)
    code, out, err = invoke("--catalog", str(reasons), "--run-dir", str(tmp_path / "run"))
    assert code == 1
    assert "  runs: npm package runs-mcp@1.0.0 needs npx (Node.js and npm), not found" in out
    assert err == "error: none of the fleet's servers can run on this machine (see skipped above)\n"
    assert not (tmp_path / "run").exists()


# A server that rejects its setup the way many CLIs do: the reason, then its whole help.
USAGE_DUMP = """\
import sys
print("Error: cannot open /srv/data: no such directory", file=sys.stderr)
print("Usage:", file=sys.stderr)
print("  broken-mcp [flags] ROOT", file=sys.stderr)
print("", file=sys.stderr)
print("Flags:", file=sys.stderr)
for i in range(25):
    print(f"      --option-{i} string   what option {i} does", file=sys.stderr)
sys.exit(2)
"""


def test_a_server_that_exits_shows_its_reason_not_its_usage(
    catalog_dir: Callable[..., Path], tmp_path: Path
) -> None:
    catalog = catalog_dir(
        broken=minimal_server("broken", packages=[this_python("-c", USAGE_DUMP)], env={"PORT": "8080"})
    )
    code, out, err = invoke(
        "--catalog", str(catalog), "--run-dir", str(tmp_path / "run"), "--start-timeout", "60"
    )
    assert code == 1
    log = tmp_path / "run" / "logs" / "broken.log"
    failure = out[out.index("failed: ") :].splitlines()
    assert re.fullmatch(r"failed: broken: exited with status 2 before serving 127\.0\.0\.1:\d+", failure[0])
    assert failure[1:] == [
        "    Error: cannot open /srv/data: no such directory",
        f"  (usage text left out; whole output: {log})",
    ]
    assert "option-" not in "\n".join(failure) + err
    assert err == "error: no server started (see the failures above)\n"
    # The whole output is kept for whoever wants it.
    assert "--option-24" in log.read_text()


@sample_catalog
def test_dry_run_starts_and_writes_nothing(tmp_path: Path) -> None:
    code, _, err = invoke("--dry-run", "--catalog", str(SAMPLE_CATALOG), "--run-dir", str(tmp_path / "run"))
    assert code == 0, err
    assert not (tmp_path / "run").exists()


def test_a_secret_set_in_the_shell_is_named_never_shown(
    reasons: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPHA_TOKEN", "alpha-very-secret")
    code, out, err = invoke("--dry-run", "--catalog", str(reasons), "--gateway-port", "9090")
    assert code == 0, err
    assert "  alpha  (streamable-http) on 127.0.0.1:8080/mcp" in out
    assert "    secrets from this shell: ALPHA_TOKEN" in out
    assert "alpha-very-secret" not in out + err
    assert "  https://127.0.0.1:9090/servers/alpha/mcp" in out


def test_dry_run_of_the_examples_catalog() -> None:
    code, out, err = invoke("--dry-run", "--catalog", "examples/catalog")
    assert code == 0, err
    assert out.splitlines()[0] == "local: 4 servers enabled; 4 would start here"
    assert re.search(
        r"^    \$ \S*python\S* -m examples\.servers\.notes --host 127\.0\.0\.1 --port \d+$", out, re.M
    )
    assert "skipped" not in out


@sample_catalog
def test_without_haproxy_the_dry_run_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", {"npx": "/opt/node/bin/npx"}.get)
    code, out, _ = invoke("--dry-run", "--catalog", str(SAMPLE_CATALOG))
    assert code == 0
    assert "gateway: haproxy (not found: apt-get install haproxy) -f <config> -db, on 127.0.0.1:8080" in out


@sample_catalog
def test_a_real_run_without_haproxy_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", {"npx": "/opt/node/bin/npx"}.get)
    code, _, err = invoke("--catalog", str(SAMPLE_CATALOG), "--run-dir", str(tmp_path))
    assert code == 1
    assert err == "error: haproxy not found on PATH (Debian: apt-get install haproxy)\n"


def test_missing_catalog_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-catalog"
    code, out, err = invoke("--dry-run", "--catalog", str(missing))
    assert code == 1
    assert out == ""
    assert f"{missing / 'servers'}: catalog folder not found" in err
    assert "Traceback" not in err


@sample_catalog
def test_missing_stack_file_is_named(tmp_path: Path) -> None:
    code, _, err = invoke("--dry-run", "--catalog", str(SAMPLE_CATALOG), "--stacks", str(tmp_path))
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


@sample_catalog
def test_a_busy_gateway_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run_dir = str(tmp_path / "run")
        code, _, err = invoke(
            "--catalog", str(SAMPLE_CATALOG), "--gateway-port", str(port), "--run-dir", run_dir
        )
    assert code == 1
    assert err == f"error: gateway port 127.0.0.1:{port} is in use (choose another: --gateway-port)\n"
    assert not (tmp_path / "run").exists()


def test_the_verify_command_runs_mcpfleet_as_this_shell_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = tmp_path / "bin" / "mcpfleet"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "argv", [str(script), "dev"])
    monkeypatch.setattr(shutil, "which", {"mcpfleet": str(script)}.get)
    assert dev_cli._program() == ["mcpfleet"]
    # Another mcpfleet first on PATH, or none: the one that runs now, by the path it was started by.
    monkeypatch.setattr(shutil, "which", {}.get)
    assert dev_cli._program() == [str(script)]
    monkeypatch.setattr(sys, "argv", [str(REPO / "mcpfleet" / "__main__.py"), "dev"])
    assert dev_cli._program() == [sys.executable, "-m", "mcpfleet"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stdout_is_terminal", [True, False])
def test_on_a_terminal_the_waits_are_drawn_on_stderr(
    monkeypatch: pytest.MonkeyPatch, stdout_is_terminal: bool
) -> None:
    err = Terminal()
    out = Terminal() if stdout_is_terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setenv("TERM", "xterm-256color")
    display = dev_cli._Display()
    display.begin("alpha", "127.0.0.1:41000")
    display.begin("beta", "127.0.0.1:41001")
    drawn = err.getvalue()
    assert "alpha: waiting for 127.0.0.1:41000" in drawn and "beta: waiting for 127.0.0.1:41001" in drawn
    assert "Starting: 2 of 2 not ready yet (first starts download)" in drawn
    display.end("alpha")
    # An outcome line printed meanwhile: above the display when stdout is that terminal too, else on
    # stdout untouched.
    print("ready: alpha on 127.0.0.1:41000 after 0.5s", flush=True)
    display.close()
    display.close()
    assert "Starting: 1 of 2 not ready yet" in err.getvalue()
    if stdout_is_terminal:
        assert out.getvalue() == ""
        assert "ready: alpha on 127.0.0.1:41000 after 0.5s" in err.getvalue()
    else:
        assert out.getvalue() == "ready: alpha on 127.0.0.1:41000 after 0.5s\n"
    # Erased when everything is up: the last thing written moves up over the display's lines and clears.
    assert err.getvalue().endswith("\x1b[1A\x1b[2K")
