"""Upstream pods: DNS resolution and re-resolution, the pick of a pod, and a router resolving a real name."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path

import pytest

from mcpfleet.router.config import Upstream
from mcpfleet.router.local import new_session_keys, router_thread
from mcpfleet.router.upstreams import Endpoints, resolve
from tests.examples.running import reference_server
from tests.router.support import UNITS_TOOLS, Issuer, router_config, server_entry


def upstream(**fields: object) -> Upstream:
    return Upstream.model_validate({"path": "/mcp", **fields})


def test_fixed_addresses() -> None:
    endpoints = Endpoints(upstream(addresses=["127.0.0.1:8080", "[::1]:8081"]))
    assert endpoints.addresses == ["127.0.0.1:8080", "[::1]:8081"]
    assert endpoints.has("[::1]:8081") and not endpoints.has("127.0.0.2:8080")


def test_re_resolution_follows_dns_and_survives_its_failures() -> None:
    answers: list[object] = [["10.0.0.1:80", "10.0.0.2:80"], OSError("timeout"), [], ["10.0.0.3:80"]]

    async def resolver(host: str, port: int) -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, list)
        return answer

    endpoints = Endpoints(upstream(host="notes.team.svc.cluster.local", port=80), resolver)

    async def rounds() -> list[list[str]]:
        seen = []
        for _ in range(4):
            await endpoints.refresh()
            seen.append(list(endpoints.addresses))
        return seen

    assert asyncio.run(rounds()) == [
        ["10.0.0.1:80", "10.0.0.2:80"],
        ["10.0.0.1:80", "10.0.0.2:80"],  # a failed lookup keeps the known pods
        [],  # no record: no pod
        ["10.0.0.3:80"],
    ]


def test_resolve_every_address_of_a_name() -> None:
    found = asyncio.run(resolve("localhost", 8080))
    assert "127.0.0.1:8080" in found
    assert asyncio.run(resolve("no-such-host.invalid", 80)) == []


def test_pick_prefers_the_least_busy_and_takes_turns() -> None:
    endpoints = Endpoints(upstream(addresses=["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]))
    picks = {endpoints.pick() for _ in range(3)}
    assert picks == {"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
    endpoints.begin("127.0.0.1:1")
    endpoints.begin("127.0.0.1:2")
    assert endpoints.pick() == "127.0.0.1:3"
    assert endpoints.pick(frozenset({"127.0.0.1:3"})) in {"127.0.0.1:1", "127.0.0.1:2"}
    endpoints.end("127.0.0.1:1")
    endpoints.end("127.0.0.1:2")
    assert endpoints.outstanding == {}


@pytest.mark.slow
def test_router_in_process_resolves_a_name(tmp_path: Path) -> None:
    """`upstream.host` as in a cluster (here `localhost`): the router resolves it and reaches the pod;
    an address that refuses the connection (localhost's ::1, where the server does not listen) is
    passed over for the next one."""
    issuer = Issuer()
    # The router lists a server behind a name with the public domain as Host, as servers behind the gateway
    # see it: this one accepts it, as the catalog's servers do.
    with reference_server("units", "--allowed-host", "mcp.test.example", log_dir=tmp_path) as units:
        entry = server_entry(
            "units", [], UNITS_TOOLS, [{"tools": ["*"], "roles": ["engineer"]}], stateless=True
        )
        entry["upstream"] = {"host": "localhost", "port": units.port, "path": "/mcp"}
        with router_thread(router_config({"units": entry}), issuer.public_pem, new_session_keys()) as router:
            assert router.app is not None
            expected = set(asyncio.run(resolve("localhost", units.port)))
            assert set(router.app.endpoints["units"].addresses) == expected
            # Listed once its listing tried the address that answers (calls wait for a verdict).
            deadline = time.monotonic() + 20
            while router.app.listings.get("units") is None:
                assert time.monotonic() < deadline, "units was never listed"
                time.sleep(0.05)
            token = issuer.token("units")
            for _ in range(4):
                request = urllib.request.Request(
                    router.url("units"),
                    data=b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_units"}}',
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Accept": "application/json, text/event-stream",
                    },
                )
                with urllib.request.urlopen(request, timeout=10) as answer:
                    assert answer.status == 200
            with urllib.request.urlopen(router.metrics_url, timeout=5) as answer:
                metrics = answer.read().decode()
            assert f'mcp_router_upstream_endpoints{{server="units"}} {float(len(expected))}' in metrics
