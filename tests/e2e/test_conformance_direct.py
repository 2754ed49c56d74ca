"""The official conformance suite straight against real servers: the baseline the gateway tests compare
with when they run the same scenarios through HAProxy."""

from __future__ import annotations

import pytest

from tests.e2e import node

pytestmark = pytest.mark.e2e

# The scenarios the issue asks the gateway to pass as direct (names as `conformance list` spells them).
SCENARIOS = [
    "server-initialize",
    "ping",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-error",
    "dns-rebinding-protection",
]


def test_the_suite_offers_every_scenario(node_tooling: object) -> None:
    assert set(SCENARIOS) <= set(node.server_scenarios())


def test_server_everything_direct(everything_url: str) -> None:
    results = node.run_conformance(everything_url, SCENARIOS)
    expected = dict.fromkeys(SCENARIOS, True)
    # server-everything 2026.8.31 checks no Host header (it listens on every interface without an
    # allow-list): the suite's foreign Host gets 200. Recorded so a release that adds the check shows.
    expected["dns-rebinding-protection"] = False
    assert dict(results) == expected, results.report(SCENARIOS)
    rebinding = {check.id: check.status for check in results.checks["dns-rebinding-protection"]}
    assert rebinding == {
        "localhost-host-rebinding-rejected": "FAILURE",
        "localhost-host-valid-accepted": "SUCCESS",
    }


def test_mcp_sdk_server_direct(conformance_target_url: str) -> None:
    """Every scenario passes against an mcp SDK server bound to loopback that has the suite's tools."""
    results = node.run_conformance(conformance_target_url, SCENARIOS)
    assert results.passed, results.report()
    assert set(results) == set(SCENARIOS)


def test_unknown_scenario_is_refused(node_tooling: object) -> None:
    with pytest.raises(ValueError, match="tools-call-nothing"):
        node.run_conformance("http://127.0.0.1:9/mcp", ["ping", "tools-call-nothing"])


def test_unreachable_server_fails_every_scenario(node_tooling: object, free_port: int) -> None:
    results = node.run_conformance(f"http://127.0.0.1:{free_port}/mcp", ["server-initialize", "ping"])
    assert dict(results) == {"server-initialize": False, "ping": False}
    assert "exit status" in results.report()
