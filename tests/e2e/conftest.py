"""Fixtures for the end-to-end tests: the Node tooling, free loopback ports, real MCP servers that live
as long as the tests using them, and the prod data plane (tests/e2e/gateway.py) with the audit check
every test using it ends with. A missing tool fails the tests (never a silent skip). Tests using the
fleet are marked `sandbox` (tests/sandbox.py: its DNS and HAProxy need root or a private namespace)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpfleet.dev import process
from tests.e2e import node
from tests.e2e.gateway import Audited, RunningFleet, running_fleet
from tests.sandbox import MARK

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "fleet" in getattr(item, "fixturenames", ()):
            item.add_marker(MARK)


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


@pytest.fixture(scope="session")
def fleet(node_tooling: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    """The prod plan's gateway and routers in front of the fleet's servers, all running (one per session:
    a test that kills a part brings it back with `fleet.whole()`)."""
    started = time.monotonic()
    with running_fleet(tmp_path_factory.mktemp("gateway-e2e")) as running:
        print(f"\nfleet, both routers and both gateways serving in {time.monotonic() - started:.1f}s")
        yield running


@pytest.fixture
def audited(fleet: RunningFleet) -> Iterator[Audited]:
    """When the test ends: every message a server ran during it agrees with the router's audit record and
    the gateway's log (tests/e2e/audit.py), and every request a router was sent has its record."""
    mark = fleet.mark()
    scope = Audited()
    yield scope
    time.sleep(0.5)  # the last answers' records and log lines are written as they end
    scope.result = fleet.wait_audit(mark, scope.excused)
    print(f"\naudit: {scope.result.summary()}")
    scope.result.assert_agrees()
