"""The router's listings against real servers: verdicts of every kind, drift after a restart, a server down
left out and back, list changes listed at once, cache hints, bounds, the Host it sends, and its metrics.

Servers: the notes reference server (modern and legacy), tests/router/changing_server.py (its tools change
while it runs and it says so; `--legacy-only` refuses server/discover), the units server over SSE, and
server-everything from npm (a legacy-only server of another SDK).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from prometheus_client import CollectorRegistry

from mcpfleet.catalog.toolhash import tool_hash as catalog_tool_hash
from mcpfleet.router.config import RouterConfig, parse_config
from mcpfleet.router.listings import Listings, ServerListing, tool_hash
from mcpfleet.router.local import free_port
from mcpfleet.router.observe import AuditSink, Metrics, discard
from mcpfleet.router.upstreams import Endpoints
from mcpfleet.verify.listing import Limits, http_connector, list_tools
from tests.conftest import REPO
from tests.examples.running import everything_script, everything_server
from tests.router.changing_server import DESCRIPTION, REWORDED
from tests.router.support import NOTES_TOOLS, router_config, server_entry

START_SECONDS = 30.0
WAIT_SECONDS = 15.0
# Short retries and pacing, so a test sees a server come back within a second or two.
FAST = {"retry_seconds": 0.1, "retry_cap_seconds": 0.5, "min_relist_seconds": 0.2, "timeout": 5.0}


# Real server processes, on ports that stay theirs across restarts


@dataclass
class Process:
    """One server process on its own port; restarted on the same port, as a pod keeps its address."""

    module: str
    args: tuple[str, ...]
    log_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/mcp"

    def start(self, *extra: str) -> None:
        command = [sys.executable, "-m", self.module, "--port", str(self.port), *self.args, *extra]
        log = (self.log_dir / f"{self.module.rsplit('.', 1)[-1]}-{self.port}.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"{command} did not start; see {self.log_dir}")
                time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextmanager
def running(module: str, *args: str, log_dir: Path) -> Iterator[Process]:
    server = Process(module, args, log_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def notes(log_dir: Path) -> Any:
    return running("examples.servers.notes", log_dir=log_dir)


def changing(log_dir: Path, *args: str) -> Any:
    return running("tests.router.changing_server", *args, log_dir=log_dir)


# Listings over a configuration, and what they published


def config(servers: Mapping[str, Mapping[str, Any]], **top: Any) -> RouterConfig:
    return parse_config({**router_config(servers), **top})


def entry(
    name: str, address: str, tools: Sequence[str], pins: Mapping[str, str] | None = None
) -> dict[str, Any]:
    document = server_entry(name, [address], tools, [])
    if pins:
        document["toolPins"] = dict(pins)
    return document


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@dataclass
class Run:
    listings: Listings
    metrics: Metrics
    changes: list[tuple[str, frozenset[str]]]

    def value(self, name: str, **labels: str) -> float | None:
        return sample(self.metrics.registry, name, **labels)


async def until(what: str, check: Callable[[], bool], seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:g}s: {what}")
        await asyncio.sleep(0.05)


def with_listings(
    router: RouterConfig,
    scenario: Callable[[Run], Awaitable[None]],
    resolve: bool = False,
    audit: AuditSink = discard,
    **tuning: Any,
) -> None:
    async def main() -> None:
        metrics = Metrics()
        endpoints = {name: Endpoints(server.upstream) for name, server in router.servers.items()}
        if resolve:
            await asyncio.gather(*(e.refresh() for e in endpoints.values()))
        listings = Listings(router, endpoints, metrics, audit, **{**FAST, **tuning})
        run = Run(listings, metrics, [])
        listings.add_listener(lambda server, kinds: run.changes.append((server, kinds)))
        await listings.start()
        try:
            assert await listings.wait_listed(WAIT_SECONDS), "the first round did not end"
            await scenario(run)
        finally:
            await listings.stop()

    asyncio.run(main())


def listed(run: Run, server: str) -> ServerListing:
    listing = run.listings.get(server)
    assert listing is not None, f"{server} is not listed"
    return listing


async def call(url: str, tool: str, mode: str = "auto") -> None:
    async with Client(url, mode=mode, cache=None) as client:
        result = await client.call_tool(tool, {})
        assert not result.is_error, result


async def verify_hashes(url: str, mode: str = "modern") -> dict[str, str]:
    """Each tool's hash as `mcpfleet verify` computes it (the SDK's parsed tools, the catalog's hash)."""
    listing = await list_tools(mode, http_connector(url, None, Limits()), Limits())  # type: ignore[arg-type]
    assert listing.status == "ok", listing.detail
    return {tool.name: tool.sha256 for tool in listing.tools}


def verified_hashes(url: str, mode: str = "modern") -> dict[str, str]:
    return asyncio.run(verify_hashes(url, mode))


# The hash


@pytest.mark.parametrize(
    ("name", "description", "schema"),
    [
        ("add_note", "Add a note.", {"type": "object", "properties": {"text": {"type": "string"}}}),
        ("n", None, {"type": "object"}),
        (
            "ünïcode",
            "Ça marche — 日本語",
            {"type": "object", "properties": {"b": {}, "a": {"enum": [1, 2.5]}}},
        ),
        ("z", "", {"type": "object", "required": ["x"], "properties": {"x": {"const": True}}}),
    ],
)
def test_the_router_hashes_a_tool_as_the_catalog_does(
    name: str, description: str | None, schema: Any
) -> None:
    assert tool_hash(name, description, schema) == catalog_tool_hash(name, description, schema)


def test_live_hashes_equal_what_verify_computes_for_the_same_servers(tmp_path: Path) -> None:
    with notes(tmp_path) as server, changing(tmp_path, "--legacy-only") as legacy:
        expected = {
            "notes": verified_hashes(server.url, "modern"),
            "legacy": verified_hashes(legacy.url, "legacy"),
        }
        # The legacy protocol lists the same definitions (the notes server serves both eras).
        assert verified_hashes(server.url, "legacy") == expected["notes"]
        router = config(
            {
                "notes": entry("notes", server.address, NOTES_TOOLS),
                "legacy": entry("legacy", legacy.address, ["echo"]),
            }
        )

        async def scenario(run: Run) -> None:
            for name in ("notes", "legacy"):
                listing = listed(run, name)
                assert {t.name: t.live_hash for t in listing.tools} == expected[name]
            assert listed(run, "notes").era == "modern"
            assert (listed(run, "legacy").era, listed(run, "legacy").protocol_version) == (
                "legacy",
                "2025-11-25",
            )

        with_listings(router, scenario)


# Verdicts


def test_verdicts_drift_after_a_restart_and_a_server_down_left_out_and_back(tmp_path: Path) -> None:
    server = Process("examples.servers.notes", (), tmp_path)
    server.start()
    try:
        live = verified_hashes(server.url)
        dead = f"127.0.0.1:{free_port()}"
        router = config(
            {
                # add_note pinned to what it serves, list_notes to something else; search_notes unpinned;
                # archive_note declared but not served; delete_note served but not declared.
                "notes": entry(
                    "notes",
                    server.address,
                    ["add_note", "list_notes", "search_notes", "archive_note"],
                    {"add_note": live["add_note"], "list_notes": "0" * 64},
                ),
                "gone": entry("gone", dead, ["add_note"], {"add_note": live["add_note"]}),
            },
            unpinnedTools="serve",
        )

        async def scenario(run: Run) -> None:
            listings = run.listings
            verdicts = {
                tool: listings.verdict("notes", tool)
                for tool in ("add_note", "list_notes", "search_notes", "archive_note", "delete_note")
            }
            assert verdicts == {
                "add_note": "pinned",
                "list_notes": "drifted",
                "search_notes": "unpinned",
                "archive_note": "missing",
                "delete_note": "undeclared",
            }
            assert [t for t in verdicts if listings.servable("notes", t)] == ["add_note", "search_notes"]
            text = listings.refusal_text("notes", "list_notes")
            assert text.startswith(
                "tool 'list_notes' changed since it was approved (pinned 000000000000..., live "
            )
            assert f"live {live['list_notes'][:12]}...)" in text
            assert (
                run.value("mcp_router_tool_withheld", server="notes", tool="list_notes", reason="drifted")
                == 1
            )
            assert (
                run.value("mcp_router_tool_withheld", server="notes", tool="add_note", reason="drifted")
                is None
            )
            # The server that cannot be reached: left out, counted, every declared tool unknown.
            assert listings.get("gone") is None and listings.down() == {"gone"}
            assert listings.verdict("gone", "add_note") == "unknown"
            assert listings.verdict("gone", "get_env") == "undeclared"
            assert listings.refusal_text("gone", "add_note") == "server 'gone' is not listed yet"
            assert run.value("mcp_router_listing_up", server="gone") == 0
            assert run.value("mcp_router_listing_up", server="notes") == 1
            assert (run.value("mcp_router_listing_refresh_total", server="gone", outcome="error") or 0) >= 1
            assert run.value("mcp_router_listing_items", server="notes", kind="tools") == 4

            # notes goes away: left out at once (its listen stream ends), not served from a stale listing.
            before = listings.generation
            await asyncio.to_thread(server.stop)
            await until("notes left out", lambda: listings.get("notes") is None)
            assert listings.verdict("notes", "add_note") == "unknown"
            assert listings.generation > before and ("notes", frozenset({"tools"})) in run.changes
            assert run.value("mcp_router_listing_up", server="notes") == 0
            assert run.value("mcp_router_listing_items", server="notes", kind="tools") == 0
            assert (
                run.value("mcp_router_tool_withheld", server="notes", tool="list_notes", reason="drifted")
                is None
            )

            # It comes back with add_note changed: listed again by the retries alone, add_note now drifted.
            await asyncio.to_thread(server.start, "--drift")
            await until("notes back", lambda: listings.get("notes") is not None)
            assert listings.verdict("notes", "add_note") == "drifted"
            assert not listings.servable("notes", "add_note")
            drifted = listed(run, "notes").tool("add_note")
            assert drifted is not None and drifted.live_hash == (await verify_hashes(server.url))["add_note"]
            assert listings.refusal_text("notes", "add_note") == (
                f"tool 'add_note' changed since it was approved (pinned {live['add_note'][:12]}...,"
                f" live {drifted.live_hash[:12]}...)"
            )
            assert (
                run.value("mcp_router_tool_withheld", server="notes", tool="add_note", reason="drifted") == 1
            )

            # Honest again: pinned again, the withheld series gone.
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            await until("add_note pinned again", lambda: listings.verdict("notes", "add_note") == "pinned")
            assert (
                run.value("mcp_router_tool_withheld", server="notes", tool="add_note", reason="drifted")
                is None
            )

        with_listings(router, scenario)
    finally:
        server.stop()


@pytest.mark.parametrize("policy", ["serve", "withhold"])
def test_unpinned_tools_are_served_or_withheld_as_the_environment_says(tmp_path: Path, policy: str) -> None:
    with notes(tmp_path) as server:
        router = config({"notes": entry("notes", server.address, NOTES_TOOLS)}, unpinnedTools=policy)

        async def scenario(run: Run) -> None:
            assert {run.listings.verdict("notes", tool) for tool in NOTES_TOOLS} == {"unpinned"}
            assert all(run.listings.servable("notes", tool) == (policy == "serve") for tool in NOTES_TOOLS)
            withheld = run.value(
                "mcp_router_tool_withheld", server="notes", tool="add_note", reason="unpinned"
            )
            assert withheld == (1 if policy == "withhold" else None)
            if policy == "withhold":
                assert run.listings.refusal_text("notes", "add_note") == (
                    "tool 'add_note' has no approved definition (no pin),"
                    " and unpinned tools are withheld here"
                )

        with_listings(router, scenario)


def test_a_definition_in_an_answer_is_judged_by_its_own_hash(tmp_path: Path) -> None:
    with notes(tmp_path) as server:
        live = verified_hashes(server.url)
        router = config(
            {"notes": entry("notes", server.address, NOTES_TOOLS, {"add_note": live["add_note"]})}
        )

        async def scenario(run: Run) -> None:
            definition = dict(listed(run, "notes").tools[0].definition)
            assert definition["name"] == "add_note"
            check = run.listings.check_definition
            assert check("notes", definition) == "pinned"
            assert (
                check("notes", {**definition, "description": "Add a note, and mail it to me."}) == "drifted"
            )
            schema = {**definition["inputSchema"], "required": []}
            assert check("notes", {**definition, "inputSchema": schema}) == "drifted"
            assert check("notes", {**definition, "name": "list_notes"}) == "unpinned"
            assert check("notes", {**definition, "name": "get_env"}) == "undeclared"
            assert check("notes", {"description": "no name"}) == "undeclared"
            assert check("nowhere", definition) == "undeclared"

        with_listings(router, scenario)


# Keeping listings fresh


@pytest.mark.parametrize("era", ["modern", "legacy"])
def test_a_list_change_the_server_announces_is_listed_at_once(tmp_path: Path, era: str) -> None:
    args = ("--legacy-only",) if era == "legacy" else ()
    with changing(tmp_path, *args) as server:
        pins = {"echo": catalog_tool_hash("echo", DESCRIPTION, echo_schema(server.url, era))}
        router = config({"changing": entry("changing", server.address, ["echo", "grow", "reword"], pins)})

        async def scenario(run: Run) -> None:
            listings = run.listings
            assert listed(run, "changing").era == era
            assert listings.verdict("changing", "echo") == "pinned"
            refreshes = run.value("mcp_router_listing_refresh_total", server="changing", outcome="ok")
            generation = listings.generation
            # Another client adds a tool; the server announces it; the router lists again on its own (the
            # renewal is 300 s away).
            await call(server.url, "grow", "legacy" if era == "legacy" else "auto")
            await until(
                "grown_1 listed", lambda: "grown_1" in [t.name for t in listed(run, "changing").tools]
            )
            assert listings.verdict("changing", "grown_1") == "undeclared"
            assert listings.generation > generation and run.changes[-1] == ("changing", frozenset({"tools"}))
            assert (
                run.value("mcp_router_listing_refresh_total", server="changing", outcome="ok")
                == (refreshes or 0) + 1
            )
            # A drift without a restart: echo reworded, announced, withheld.
            await call(server.url, "reword", "legacy" if era == "legacy" else "auto")
            await until("echo drifted", lambda: listings.verdict("changing", "echo") == "drifted")
            echo = listed(run, "changing").tool("echo")
            assert echo is not None and echo.definition["description"] == REWORDED

        with_listings(router, scenario, refresh_seconds=300)


def echo_schema(url: str, era: str) -> Any:
    async def schema() -> Any:
        async with Client(url, mode="legacy" if era == "legacy" else "auto", cache=None) as client:
            (echo,) = [tool for tool in (await client.list_tools()).tools if tool.name == "echo"]
            return echo.input_schema

    return asyncio.run(schema())


@pytest.mark.parametrize("era", ["modern", "legacy"])
def test_a_held_connection_whose_server_restarts_is_listed_afresh(tmp_path: Path, era: str) -> None:
    # The server restarts on the same address (a pod keeps its IP across a container restart): its
    # listen stream or legacy session ends with it, and the router connects afresh without being asked.
    server = Process("tests.router.changing_server", ("--legacy-only",) if era == "legacy" else (), tmp_path)
    server.start()
    try:
        router = config({"changing": entry("changing", server.address, ["echo"])})

        async def scenario(run: Run) -> None:
            listings = run.listings
            assert listed(run, "changing").era == era
            await call(server.url, "grow", "legacy" if era == "legacy" else "auto")
            await until("grown_1 listed", lambda: listings.verdict("changing", "grown_1") == "undeclared")
            await asyncio.to_thread(server.stop)
            await until("left out", lambda: listings.get("changing") is None)
            await asyncio.to_thread(server.start)
            # The new process has not grown: listed afresh, not served from the old listing.
            await until("listed afresh", lambda: listings.get("changing") is not None)
            assert [t.name for t in listed(run, "changing").tools] == ["echo", "grow", "reword"]
            assert run.value("mcp_router_listing_up", server="changing") == 1

        with_listings(router, scenario, refresh_seconds=300)
    finally:
        server.stop()


def test_a_pod_that_fails_costs_a_try_on_the_next_never_the_listing(tmp_path: Path) -> None:
    # Two pods of one server, and an address nothing listens on (a pod killed, still resolved).
    first = Process("examples.servers.notes", (), tmp_path)
    second = Process("examples.servers.notes", (), tmp_path)
    first.start()
    second.start()
    dead = f"127.0.0.1:{free_port()}"
    lines: list[bytes] = []
    try:
        document = entry("notes", first.address, NOTES_TOOLS)
        # Endpoints.pick takes turns from the second address: the dead one is tried first.
        document["upstream"]["addresses"] = [first.address, dead, second.address]
        router = config({"notes": document})

        def pods() -> list[tuple[str, str]]:
            records = [json.loads(line) for line in lines]
            return [(r["pod"], r["outcome"]) for r in records if r["method"] == "tools/list"]

        async def scenario(run: Run) -> None:
            listings = run.listings
            # The dead pod cost a try on the next: listed in the first round, no failed listing counted.
            assert listed(run, "notes").tools
            assert run.value("mcp_router_listing_refresh_total", server="notes", outcome="error") is None
            held = pods()[-1][0]
            assert held != dead
            # The pod the listing is held on dies: the listing stays in force while the router lists the
            # server again on another pod, the dead address tried on the way or not.
            victim = first if held == first.address else second
            survivor = second if victim is first else first
            await asyncio.to_thread(victim.stop)
            deadline = time.monotonic() + WAIT_SECONDS
            while (survivor.address, "ok") not in pods()[1:]:
                assert listings.get("notes") is not None, "the listing was dropped while a pod was up"
                assert time.monotonic() < deadline, f"not listed again on {survivor.address}: {pods()}"
                await asyncio.sleep(0.01)
            assert run.value("mcp_router_listing_refresh_total", server="notes", outcome="error") is None
            # Every pod down: now the server is left out.
            await asyncio.to_thread(survivor.stop)
            await until("left out", lambda: listings.get("notes") is None)

        with_listings(router, scenario, refresh_seconds=300, audit=lines.append)
    finally:
        first.stop()
        second.stop()


def test_a_modern_answers_cache_hint_renews_a_listing_no_stream_covers(tmp_path: Path) -> None:
    with changing(tmp_path, "--no-listen", "--ttl-ms", "300") as server:
        router = config({"changing": entry("changing", server.address, ["echo"])})

        async def scenario(run: Run) -> None:
            listing = listed(run, "changing")
            assert (listing.era, listing.ttl_ms) == ("modern", 300)
            assert listing.capabilities["tools"].get("listChanged") is not True
            await call(server.url, "grow")  # nobody is told: only the hint renews the listing
            await until(
                "grown_1 listed", lambda: "grown_1" in [t.name for t in listed(run, "changing").tools], 5
            )

        # At most every min_ttl_seconds (0.5 s here, 5 s by default), whatever the hint; never 300 s.
        with_listings(router, scenario, refresh_seconds=300, min_ttl_seconds=0.5)


def test_refresh_lists_again_and_returns_once_listed(tmp_path: Path) -> None:
    # Legacy, stateless and quiet: no stream, no hint; only refresh() or the renewal lists it again.
    with changing(tmp_path, "--legacy-only", "--quiet", "--stateless") as server:
        router = config({"changing": entry("changing", server.address, ["echo"])})

        async def scenario(run: Run) -> None:
            assert listed(run, "changing").era == "legacy"
            await call(server.url, "grow", "legacy")
            await asyncio.sleep(0.5)
            assert "grown_1" not in [t.name for t in listed(run, "changing").tools]
            await run.listings.refresh("changing")
            assert "grown_1" in [t.name for t in listed(run, "changing").tools]

        with_listings(router, scenario, refresh_seconds=300)


# Bounds


def test_items_and_bytes_beyond_the_bounds_are_cut_and_counted(tmp_path: Path) -> None:
    with changing(tmp_path, "--filler", "30", "--filler-bytes", "1000") as server:
        router = config({"changing": entry("changing", server.address, ["echo"])})

        async def by_items(run: Run) -> None:
            listing = listed(run, "changing")
            assert len(listing.tools) == 10 and listing.cut == {"tools": 23}
            assert run.value("mcp_router_listing_items", server="changing", kind="tools") == 10
            assert run.value("mcp_router_listing_cut", server="changing", kind="tools") == 23
            assert run.value("mcp_router_listing_items", server="changing", kind="prompts") == 1

        with_listings(router, by_items, max_items=10)

        async def by_bytes(run: Run) -> None:
            listing = listed(run, "changing")
            # Each filler is ~1.2 KB of JSON: about ten fit in 12 KB; the rest, and every later list, is cut.
            assert 5 < len(listing.tools) < 15
            assert listing.cut["tools"] == 33 - len(listing.tools)
            assert listing.cut.get("resources") == 1 and listing.cut.get("prompts") == 1
            assert listing.resources == () and listing.prompts == ()
            assert run.value("mcp_router_listing_cut", server="changing", kind="resource_templates") == 1

        with_listings(router, by_bytes, max_bytes=12_000)


def test_max_tools_per_server_comes_from_the_fleet_section(tmp_path: Path) -> None:
    with changing(tmp_path, "--filler", "5") as server:
        fleet = {"audience": "https://mcp.test.example/mcp", "maxToolsPerServer": 4}
        router = config({"changing": entry("changing", server.address, ["echo"])}, fleet=fleet)

        async def scenario(run: Run) -> None:
            assert len(listed(run, "changing").tools) == 4 and listed(run, "changing").cut == {"tools": 4}

        with_listings(router, scenario)


# Transports, other servers, and what the router sends


def test_a_server_of_the_sse_transport_is_listed_on_its_stream(tmp_path: Path) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tests.router.sse_server",
        "--port",
        str(port),
        "--call-log",
        str(tmp_path / "c"),
    ]
    with (tmp_path / "sse.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "the SSE server did not start"
                time.sleep(0.05)
        document = server_entry("units", [f"127.0.0.1:{port}"], ["convert"], [], transport="sse", path="/sse")
        router = config({"units": document})

        async def scenario(run: Run) -> None:
            listing = listed(run, "units")
            assert listing.era == "legacy"
            assert {t.name for t in listing.tools} == {"convert", "calculate", "list_units"}
            assert run.listings.verdict("units", "convert") == "unpinned"

        with_listings(router, scenario)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def test_a_legacy_only_server_of_another_sdk_is_listed_every_page(tmp_path: Path) -> None:
    with everything_server(everything_script(), tmp_path) as everything:
        router = config(
            {"everything": entry("everything", f"127.0.0.1:{everything.port}", ["echo", "get-sum"])}
        )

        async def scenario(run: Run) -> None:
            listing = listed(run, "everything")
            assert (listing.era, listing.protocol_version) == ("legacy", "2025-11-25")
            expected = await verify_hashes(everything.url, "legacy")
            assert {t.name: t.live_hash for t in listing.tools} == expected
            assert run.listings.verdict("everything", "echo") == "unpinned"
            assert run.listings.verdict("everything", "get-env") == "undeclared"
            assert listing.resources and listing.resource_templates and listing.prompts
            assert all(isinstance(r["uri"], str) for r in listing.resources)

        with_listings(router, scenario)


def test_a_server_behind_a_service_name_is_sent_the_public_host(tmp_path: Path) -> None:
    # This server accepts the public domain and nothing else (not even loopback names).
    with changing(tmp_path, "--only-host", "mcp.test.example") as server:
        by_name = {"host": "127.0.0.1", "port": server.port, "path": "/mcp"}
        named = {**server_entry("named", [server.address], ["echo"], []), "upstream": by_name}
        router = config({"named": named, "addressed": entry("addressed", server.address, ["echo"])})

        async def scenario(run: Run) -> None:
            # Reached by its Service name, the router sends the domain of auth.audiencePrefix, as clients do
            # through the gateway; by a fixed address, the address itself, which this server refuses.
            assert listed(run, "named").era == "modern"
            assert run.listings.get("addressed") is None

        with_listings(router, scenario, resolve=True)


# Stopping


def test_stop_ends_every_listing_task_mid_round_and_while_held(tmp_path: Path) -> None:
    with changing(tmp_path) as server:
        names = [f"s{number:02d}" for number in range(40)]
        router = config({name: entry(name, server.address, ["echo"]) for name in names})

        async def main() -> None:
            for settle in (0.05, None):  # stopped during the first round, then once every stream is held
                endpoints = {name: Endpoints(s.upstream) for name, s in router.servers.items()}
                listings = Listings(router, endpoints, Metrics(), concurrency=4)
                await listings.start()
                if settle is None:
                    assert await listings.wait_listed(WAIT_SECONDS)
                    assert not listings.down()
                else:
                    await asyncio.sleep(settle)
                await asyncio.wait_for(listings.stop(), 15)
                tasks = [task for task in asyncio.all_tasks() if task.get_name().startswith("listing ")]
                assert tasks == []

        asyncio.run(main())
