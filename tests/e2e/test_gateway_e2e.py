"""The prod gateway end to end: the HAProxy configuration `mcpfleet plan --env prod` ships, run unmodified
by two HAProxy 2.6 processes over TLS, in front of the fleet's real MCP servers (notes with two
replicas, units, text, server-everything, the conformance target), reached by the mcp SDK's clients,
the official conformance suite and `mcpfleet verify`.

One fleet serves the whole module (tests/e2e/gateway.py starts it and stops every process); a test that
kills something brings it back before it ends, and a test that needs it whole waits until it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx2
import pytest
import yaml

from components.gateway.config import RATE_LIMITS_FILE, ROUTES_FILE, render_gateway_config
from components.manifests.gateway import ACCESS_FILE, CONFIG_KEY, TLS_PORT, endpoints_host
from tests.e2e import node
from tests.e2e.gateway import (
    GATEWAY_ADDRESSES,
    MODERN,
    REPLICA_ADDRESSES,
    STACKS,
    Rerouted,
    RunningFleet,
    Seen,
    bearer_forwarder,
    mcp_client,
    request,
    result_text,
    running_fleet,
    scrape,
    stick_entries,
)
from tests.e2e.test_conformance_direct import SCENARIOS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SESSIONS = 50
CONCURRENCY = 8
NOTES_TOOLS = {"add_note", "list_notes", "search_notes", "delete_note"}
NOTES_REPLICAS = {"notes-1", "notes-2"}
# The mandatory policy findings the plan of this catalog must have, and no other: the examples' images
# are not published, so nothing can pin them by digest (and server-everything ships `latest` only).
EXPECTED_VIOLATIONS = {"image-pinned-by-digest", "image-no-latest-tag"}

T = TypeVar("T")


def run_async(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """anyio.run in a thread of its own: asyncio.run leaves its thread without a current event loop,
    which the Pulumi SDK needs in the main thread for plan tests later in the same session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, function, *args).result()


@pytest.fixture(scope="module")
def fleet(node_tooling: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    started = time.monotonic()
    with running_fleet(tmp_path_factory.mktemp("gateway-e2e")) as running:
        print(f"\nfleet and both gateways serving in {time.monotonic() - started:.1f}s")
        yield running


def whole(fleet: RunningFleet) -> None:
    """Every replica and both gateways running, and every replica UP in both gateways."""
    for replicas in fleet.replicas.values():
        for replica in replicas:
            if replica.child is None or not replica.child.running():
                fleet.restart_replica(replica)
    for gateway in fleet.gateways:
        if not gateway.running():
            fleet.start_gateway(gateway.index)
    for gateway in fleet.gateways:
        fleet.wait_served(gateway.index)


def describe(exc: BaseException) -> str:
    """The innermost errors of what a client raised (the SDK wraps them in exception groups)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"[:300]


def session_hash(session_id: str) -> str:
    """The session as the gateway's access log names it (never the id itself)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:16].upper()


# The configuration


def test_the_gateways_run_the_configuration_the_prod_plan_ships(fleet: RunningFleet) -> None:
    planned = fleet.planned
    # The plan wrote everything, then failed on the unpublished images only.
    violations = re.findall(r"\[mandatory / \w+\] ([a-z0-9-]+) \(server ([a-z0-9-]+)", planned.output)
    assert planned.returncode == 1 and violations, planned.output
    assert {rule for rule, _ in violations} == EXPECTED_VIOLATIONS, planned.output
    assert set(planned.files) == {CONFIG_KEY, ROUTES_FILE, ACCESS_FILE, RATE_LIMITS_FILE}
    # The ConfigMaps' data, the config directory both HAProxy processes read, and the renderer agree
    # byte for byte.
    for name, text in planned.files.items():
        assert (fleet.config_dir / name).read_bytes() == text.encode("utf-8"), name
    assert sorted(p.name for p in fleet.config_dir.iterdir()) == sorted(planned.files)
    assert render_gateway_config(planned.fleet) == planned.files
    config = planned.files[CONFIG_KEY]
    # What makes this the prod configuration: TLS here, replicas found through cluster DNS, all peers.
    assert f':{TLS_PORT}" ssl crt ' in config and fleet.port == TLS_PORT
    notes = fleet.server("notes")
    assert notes.replicas == 2 and len(REPLICA_ADDRESSES["notes"]) == 2
    assert (
        f"server-template pod 1-{notes.max_replicas} {endpoints_host(notes)}:8080 check resolvers kube"
        in config
    )
    assert config.count("    server mcp-gateway-") == 2 * fleet.fleet.settings.gateway.max_replicas
    assert "caller/conformance 40" in planned.files[RATE_LIMITS_FILE]
    assert all(gateway.running() for gateway in fleet.gateways)


# Sessions through the two notes replicas


@dataclass
class SessionRun:
    """What one client session did: its calls, the replicas that answered and how it ended."""

    index: int
    mode: str
    started: float = 0.0
    calls: int = 0
    failed_calls: int = 0
    error: str | None = None
    seen: Seen = field(default_factory=Seen)

    @property
    def ok(self) -> bool:
        return self.error is None


async def notes_session(
    fleet: RunningFleet, index: int, mode: str, subject: str, gateway: int = 0
) -> SessionRun:
    """One client session on notes: initialize (legacy only), tools/list, add_note, list_notes.

    Legacy sessions must find their note (state on the replica that answered initialize); modern ones have
    no session, and the server says so in the tool's result."""
    run = SessionRun(index, mode, started=time.monotonic())
    note = f"note {index} of {subject}"
    token = fleet.issuer.token("notes", subject, roles="support")
    try:
        run.calls += 1  # initialize (legacy), or the first request (modern)
        async with mcp_client(fleet.url("notes", gateway), token, mode, fleet.tls(), run.seen) as client:
            run.calls += 1
            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == NOTES_TOOLS, listed
            run.calls += 1
            added = await client.call_tool("add_note", {"text": note})
            run.calls += 1
            notes = await client.call_tool("list_notes", {})
            if mode == "legacy":
                assert not added.is_error and not notes.is_error, result_text(added) + result_text(notes)
                assert note in result_text(notes), result_text(notes)
            else:
                assert added.is_error and "sessionless" in result_text(added), result_text(added)
    except Exception as exc:  # every failure is counted, with its reason
        run.failed_calls = 1
        run.error = describe(exc)
    return run


async def sessions(
    fleet: RunningFleet, count: int, mode: str, prefix: str, concurrency: int = CONCURRENCY
) -> list[SessionRun]:
    runs: dict[int, SessionRun] = {}
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(index: int) -> None:
        async with limiter:
            runs[index] = await notes_session(fleet, index, mode, f"{prefix}-{index}")

    async with anyio.create_task_group() as group:
        for index in range(count):
            group.start_soon(one, index)
    return [runs[index] for index in range(count)]


@pytest.mark.parametrize("mode", ["legacy", MODERN])
def test_clients_complete_every_session_through_both_notes_replicas(fleet: RunningFleet, mode: str) -> None:
    whole(fleet)
    started = time.monotonic()
    runs = run_async(sessions, fleet, SESSIONS, mode, f"{mode}-{uuid.uuid4().hex[:6]}")
    elapsed = time.monotonic() - started
    completed = [run for run in runs if run.ok]
    answered = Counter(replica for run in completed for replica in set(run.seen.replicas))
    print(
        f"\n{mode}: {len(completed)}/{SESSIONS} sessions in {elapsed:.1f}s,"
        f" sessions each replica answered (in whole or in part) {dict(answered)}"
    )
    assert len(completed) == SESSIONS, [run.error for run in runs if not run.ok]
    assert set(answered) == NOTES_REPLICAS, "both notes replicas should serve sessions"
    for run in completed:
        assert run.seen.statuses and all(200 <= status < 300 for status in run.seen.statuses), run.seen
    if mode == "legacy":
        # Affinity: every answer of a session (POSTs, its stream, its DELETE) came from one replica.
        assert all(len(set(run.seen.replicas)) == 1 for run in completed)
        assert all(len(run.seen.sessions) == 1 for run in completed)
    else:
        assert not any(run.seen.sessions for run in completed), "2026-07-28 has no sessions"


# Refusals


def test_the_gateway_refuses_without_a_token_for_this_server_a_forbidden_tool_and_over_the_rate(
    fleet: RunningFleet,
) -> None:
    tls, issuer = fleet.tls(), fleet.issuer
    notes = fleet.url("notes")
    status, headers, answer = request(notes, tls)
    assert status == 401 and answer["error"]["code"] == -32001, answer
    assert headers["www-authenticate"].startswith('Bearer resource_metadata="https://mcp.example.com/')
    # Signed by the issuer, but for units: its audience is not notes'.
    status, _, answer = request(notes, tls, issuer.token("units", "mallory"))
    assert status == 401 and answer["error"]["code"] == -32001, answer

    # Support may add notes but not delete them: with the SDK's clients (legacy names the tool in the
    # body, modern in the mcp-name header too) and on the wire.
    async def support(mode: str) -> tuple[str, Seen]:
        seen = Seen()
        token = issuer.token("notes", f"support-{mode}", roles="support")
        async with mcp_client(notes, token, mode, tls, seen) as client:
            added = await client.call_tool("add_note", {"text": "keep me"})
            assert not added.is_error or mode == MODERN
            try:
                await client.call_tool("delete_note", {"id": 1})
            except Exception as exc:
                return describe(exc), seen
        return "no error", seen

    for mode in ("legacy", MODERN):
        outcome, seen = run_async(support, mode)
        # One 403, for delete_note (the session's closing DELETE may follow it).
        assert outcome != "no error" and seen.statuses.count(403) == 1, (mode, outcome, seen)
        print(f"\n{mode} client, delete_note as support: HTTP 403, the client raised {outcome}")
    delete = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "delete_note"}}
    status, _, answer = request(notes, tls, issuer.token("notes", "sam", roles="support"), delete)
    assert status == 403 and answer["error"]["code"] == -32003, answer
    # An engineer gets past the gateway (the server then asks for a session).
    status, _, _ = request(notes, tls, issuer.token("notes", "erin", roles="engineer"), delete)
    assert status not in (401, 403, 429)

    # The conformance target admits 40 requests a minute per caller (its catalog entry): the 41st of one
    # caller gets 429 with Retry-After, while another caller still passes.
    conformance = fleet.url("conformance")
    caller = issuer.token("conformance", f"burst-{uuid.uuid4().hex[:6]}")
    limit = fleet.server("conformance").spec.rate_limits
    assert limit is not None and limit.per_caller_per_minute == 40
    started = time.monotonic()
    statuses = [request(conformance, tls, caller)[0] for _ in range(limit.per_caller_per_minute)]
    status, headers, answer = request(conformance, tls, caller)
    print(
        f"\n{len(statuses) + 1} requests of one caller in {time.monotonic() - started:.2f}s:"
        f" {dict(Counter(statuses))}, then {status}"
    )
    assert 429 not in statuses and not {401, 403} & set(statuses), statuses
    assert status == 429 and headers["retry-after"] == "60" and answer["error"]["code"] == -32029, answer
    assert request(conformance, tls, issuer.token("conformance", "someone-else"))[0] != 429


# The official conformance suite


def test_the_conformance_suite_passes_through_the_gateway_as_direct(fleet: RunningFleet) -> None:
    whole(fleet)
    replica = fleet.replicas["conformance"][0]
    started = time.monotonic()
    direct = node.run_conformance(f"http://{replica.address}:{replica.port}/mcp", SCENARIOS)
    direct_seconds = time.monotonic() - started
    assert direct.passed, direct.report()
    # The suite sends no token and cannot be told to (`conformance server` takes --url only, and its
    # client is built with no request options). A local forwarder adds `Authorization: Bearer` and
    # forwards everything else unchanged, Host included, to the gateway over TLS; the suite sees a
    # plain-HTTP 127.0.0.1 URL, which its dns-rebinding scenario requires. The server behind the gateway
    # gets the Host the suite sent: evil.example.com must be refused there, 127.0.0.1:<port> accepted.
    subject = f"conformance-{uuid.uuid4().hex[:6]}"
    token = fleet.issuer.token("conformance", subject)
    started = time.monotonic()
    with bearer_forwarder((GATEWAY_ADDRESSES[0], fleet.port), fleet.tls(), token) as forwarder:
        through = node.run_conformance(
            f"http://127.0.0.1:{forwarder.port}/servers/conformance/mcp", SCENARIOS
        )
        forwarded = forwarder.forwarded
    print(
        f"\nconformance: direct {sum(direct.values())}/{len(direct)} in {direct_seconds:.1f}s, through the"
        f" gateway {sum(through.values())}/{len(through)} in {time.monotonic() - started:.1f}s"
        f" (forwarded: {dict(forwarded)})"
    )
    assert dict(through) == dict(direct) == dict.fromkeys(SCENARIOS, True), through.report(SCENARIOS)

    # It really went through the gateway, as this caller, and the foreign Host was refused behind it.
    # (HAProxy logs a request when its stream ends, and the suite's standalone GET streams outlive it.)
    def posts() -> list[dict[str, Any]]:
        return [e for e in fleet.log_entries(0) if e["caller"] == subject and e["http_method"] == "POST"]

    deadline = time.monotonic() + 2
    while len(entries := posts()) < forwarded["POST"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(entries) == forwarded["POST"], (entries, forwarded)
    assert {"initialize", "ping", "tools/list", "tools/call"} <= {e["rpc_method"] for e in entries}
    assert {e["server"] for e in entries} == {"server_conformance"}
    assert 421 in {e["status"] for e in entries}
    rebinding = {check.id: check.status for check in through.checks["dns-rebinding-protection"]}
    assert rebinding == {
        "localhost-host-rebinding-rejected": "SUCCESS",
        "localhost-host-valid-accepted": "SUCCESS",
    }


# mcpfleet verify


def verify(fleet: RunningFleet, token_file: Path) -> tuple[int, dict[str, Any], str]:
    # verify's HTTP client (httpx2) trusts SSL_CERT_FILE when it is set, as the default context reads it.
    env = {**os.environ, "SSL_CERT_FILE": str(fleet.certificate)}
    result = subprocess.run(
        [
            *(sys.executable, "-m", "mcpfleet", "verify", "--env", "prod"),
            *("--endpoint", fleet.endpoint(0), "--token-file", str(token_file)),
            *("--catalog", str(fleet.planned.catalog), "--stacks", str(STACKS), "--format", "json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"verify printed no JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.returncode, report, result.stdout + result.stderr


def test_verify_finds_no_drift_on_the_fleet_then_the_tool_a_server_changed(
    fleet: RunningFleet, tmp_path: Path
) -> None:
    whole(fleet)
    tokens = {
        server.name: fleet.issuer.token(
            server.name,
            "verify",
            roles=" ".join(sorted({r for rule in server.spec.access for r in rule.roles})),
        )
        for server in fleet.fleet.servers
    }
    token_file = tmp_path / "tokens.yaml"
    token_file.write_text(yaml.safe_dump(tokens), encoding="utf-8")
    status, report, output = verify(fleet, token_file)
    print(f"\nverify, honest fleet: exit {status}")
    assert status == 0, output
    assert all(token not in output for token in tokens.values())
    servers = {server["name"]: server for server in report["servers"]}
    assert set(servers) == {server.name for server in fleet.fleet.servers}
    assert all(server["status"] == "ok" for server in servers.values()), output

    units = fleet.replicas["units"][0]
    try:
        fleet.restart_replica(units, drift=True)
        status, report, output = verify(fleet, token_file)
    finally:
        fleet.restart_replica(units)
    print(f"verify, units restarted with --drift: exit {status}")
    assert status == 1, output
    servers = {server["name"]: server for server in report["servers"]}
    assert {name for name, server in servers.items() if server["status"] != "ok"} == {"units"}, output
    drift = servers["units"]["drift"]
    assert servers["units"]["status"] == "drift" and drift["found"], servers["units"]
    # --drift adds a required argument to convert: its input schema, nothing else.
    assert [(c["name"], c["parts"]) for c in drift["changed"]] == [("convert", ["inputSchema"])], drift
    assert drift["added"] == drift["removed"] == []


# Losses


def test_a_session_outlives_the_gateway_replica_that_opened_it(fleet: RunningFleet) -> None:
    """Legacy sessions opened through gateway 0 continue through gateway 1 once gateway 0 is gone: the
    stick entries reached gateway 1 over the peers protocol, keyed by the pod's address, so gateway 1
    sends each session to the same pod although it holds the pods under other server names (it learnt
    notes' pods in another order than gateway 0 did)."""
    whole(fleet)
    tls = fleet.tls()
    count = 6
    timings: list[float] = []

    async def scenario() -> list[tuple[str, str, str, bool]]:
        outcome: list[tuple[str, str, str, bool]] = []
        known = stick_entries(scrape(GATEWAY_ADDRESSES[1]), "server_notes")
        assert known is not None
        async with AsyncExitStack() as stack:
            opened: list[tuple[Rerouted, Any, Seen]] = []
            for index in range(count):
                seen = Seen()
                transport = Rerouted(httpx2.AsyncHTTPTransport(verify=tls), GATEWAY_ADDRESSES[0])
                token = fleet.issuer.token("notes", f"roaming-{index}", roles="support")
                client = await stack.enter_async_context(
                    mcp_client(fleet.url("notes", 0), token, "legacy", tls, seen, transport=transport)
                )
                added = await client.call_tool("add_note", {"text": f"roaming note {index}"})
                assert not added.is_error, result_text(added)
                opened.append((transport, client, seen))
            opened_at = time.monotonic()
            # Until the new sessions' stick entries have reached gateway 1 over the peers protocol.
            synced = None
            deadline = time.monotonic() + 5
            while synced is None and time.monotonic() < deadline:
                held = stick_entries(scrape(GATEWAY_ADDRESSES[1]), "server_notes")
                if held is not None and held >= known + count:
                    synced = time.monotonic() - opened_at
                await anyio.sleep(0.05)
            assert synced is not None, f"gateway 1 did not learn the {count} new sessions within 5s"
            timings.append(synced)
            await anyio.to_thread.run_sync(fleet.stop_gateway, 0, signal.SIGKILL)
            for index, (transport, client, seen) in enumerate(opened):
                transport.address = GATEWAY_ADDRESSES[1]
                before = seen.replicas[-1]
                notes = await client.call_tool("list_notes", {})
                found = f"roaming note {index}" in result_text(notes) and not notes.is_error
                (session,) = seen.sessions
                outcome.append((session, before, seen.replicas[-1], found))
        return outcome

    try:
        outcome = run_async(scenario)
    finally:
        whole(fleet)
    print(
        f"\n{count} sessions' stick entries on gateway 1 {timings[0]:.2f}s after the last opened; after"
        f" gateway 0's SIGKILL, (session, replica before, replica after, note found): {outcome}"
    )
    assert all(found and before == after for _, before, after, found in outcome), outcome
    # Which server name each gateway gave the pod that served each session.
    names: list[dict[str, str]] = [{}, {}]
    for index in (0, 1):
        for entry in fleet.log_entries(index):
            names[index].setdefault(entry["session"], entry["replica"])
    pods = [(names[0][session_hash(s)], names[1][session_hash(s)], before) for s, before, _, _ in outcome]
    print(f"server names (gateway 0, gateway 1, replica): {sorted(set(pods))}")
    assert any(first != second for first, second, _ in pods), pods


def test_new_sessions_succeed_after_a_notes_replica_is_killed_mid_run(fleet: RunningFleet) -> None:
    """Sessions (legacy and modern by turns, four at a time) keep starting while notes-2 is SIGKILLed.
    The gateway has not marked it down yet (its checks need 15 s): a refused connection costs a retry on
    notes-1 (`retries 2`, `option redispatch 1`), so every session started after the kill completes. What
    fails is counted: the calls in flight to notes-2, and legacy sessions it held (their state died with
    it, and notes-1 does not know them)."""
    whole(fleet)
    victim = fleet.replicas["notes"][1]
    total = 100
    kill_after = 20
    killed_at: list[float] = []

    async def scenario() -> list[SessionRun]:
        runs: dict[int, SessionRun] = {}
        limiter = anyio.CapacityLimiter(4)
        prefix = f"kill-{uuid.uuid4().hex[:6]}"

        async def one(index: int) -> None:
            async with limiter:
                mode = "legacy" if index % 2 == 0 else MODERN
                runs[index] = await notes_session(fleet, index, mode, f"{prefix}-{index}")
                if index == kill_after:
                    await anyio.to_thread.run_sync(fleet.kill_replica, victim)
                    killed_at.append(time.monotonic())

        async with anyio.create_task_group() as group:
            for index in range(total):
                group.start_soon(one, index)
        return [runs[index] for index in range(total)]

    started = time.monotonic()
    try:
        runs = run_async(scenario)
    finally:
        fleet.restart_replica(victim)
    (kill,) = killed_at
    calls = sum(run.calls for run in runs)
    failed = sum(run.failed_calls for run in runs)
    after = [run for run in runs if run.started > kill]
    print(
        f"\nnotes-2 SIGKILLed after {kill - started:.1f}s: {failed} failed calls of {calls};"
        f" {sum(r.ok for r in runs)}/{total} sessions completed, {sum(r.ok for r in after)}/{len(after)}"
        f" of those started after the kill; failures: {[r.error for r in runs if not r.ok]}"
    )
    assert len(after) >= total // 2
    assert all(run.ok for run in after), [run.error for run in after if not run.ok]
    assert failed <= 0.05 * calls
    before = {replica for run in runs if run.started < kill for replica in run.seen.replicas}
    assert before == NOTES_REPLICAS
    assert {replica for run in after for replica in run.seen.replicas} == {"notes-1"}
