"""Fixtures for the end-to-end tests: the Node tooling, free loopback ports, and real MCP servers that
live as long as the tests using them. A missing tool fails the tests (never a silent skip)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpfleet.dev import process
from tests.e2e import node

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def node_tooling() -> Path:
    """The Node 22 binary; fails with the install command when `make e2e-deps` has not run."""
    try:
        return node.node_binary()
    except node.ToolingMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def free_port() -> int:
    return process.free_port(LOOPBACK)


@pytest.fixture(scope="session")
def everything_url(node_tooling: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`@modelcontextprotocol/server-everything` (Streamable HTTP) on a free port: its /mcp URL."""
    log = tmp_path_factory.mktemp("everything") / "server.log"
    with node.everything_server(process.free_port(LOOPBACK), log, timeout=START_TIMEOUT) as url:
        yield url


@pytest.fixture(scope="session")
def conformance_target_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """tests/e2e/conformance_server.py (mcp SDK, the suite's own tools) on a free port: its /mcp URL."""
    port = process.free_port(LOOPBACK)
    log = tmp_path_factory.mktemp("conformance-target") / "server.log"
    child = process.start(
        "conformance-target",
        [sys.executable, "-m", "tests.e2e.conformance_server", "--host", LOOPBACK, "--port", str(port)],
        log,
        cwd=REPO,
        port=port,
    )
    try:
        process.wait_for_port(child, LOOPBACK, port, START_TIMEOUT)
        yield f"http://{LOOPBACK}:{port}/mcp"
    finally:
        process.stop(child)
