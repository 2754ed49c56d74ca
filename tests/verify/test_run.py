"""The fleet run: gateway URLs, bounded concurrency, reports in catalog order."""

from __future__ import annotations

import anyio
import pytest

from mcpfleet.verify import run
from mcpfleet.verify.listing import Limits, Listing
from mcpfleet.verify.run import ServerReport, Target, gateway_url, redact_userinfo, verify_targets


def test_gateway_urls() -> None:
    assert gateway_url("https://mcp.example.com", "units", "streamable-http") == (
        "https://mcp.example.com/servers/units/mcp"
    )
    # stdio servers sit behind the bridge, which serves Streamable HTTP.
    assert (
        gateway_url("https://mcp.example.com/", "time", "stdio") == "https://mcp.example.com/servers/time/mcp"
    )
    assert gateway_url("http://gw:8443/base", "pg", "sse") == "http://gw:8443/base/servers/pg/sse"


def test_userinfo_never_reaches_a_report() -> None:
    assert redact_userinfo("https://ops:hunter2@gw.example.com/x") == "https://gw.example.com/x"
    assert redact_userinfo("https://gw.example.com/x") == "https://gw.example.com/x"


def test_concurrency_is_bounded_and_order_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    active = 0
    most = 0

    async def fake(target: Target, limits: Limits, tls: object = None) -> ServerReport:
        nonlocal active, most
        active += 1
        most = max(most, active)
        # Later targets finish first: the report must still follow the catalog's order.
        await anyio.sleep(0.01 * (10 - int(target.name[1:])))
        active -= 1
        return ServerReport(target, (Listing("legacy", "ok"),), None)

    monkeypatch.setattr(run, "verify_server", fake)
    targets = [Target(f"s{i}", "streamable-http", f"http://127.0.0.1:9/{i}", ()) for i in range(8)]
    finished: list[str] = []
    reports = anyio.run(verify_targets, targets, Limits(), 3, None, lambda r: finished.append(r.name))
    assert most == 3
    assert [report.name for report in reports] == [f"s{i}" for i in range(8)]
    # Progress hears of each server once, as it finishes (not in the catalog's order).
    assert sorted(finished) == [f"s{i}" for i in range(8)] and finished != sorted(finished)
