"""Benchmark the fleet endpoint: tools/list and tools/call through the router's `/mcp`, through its
per-server routes and straight to the servers, beside peer aggregators doing the same job, in one run,
on fleets of 16 and 1,000 servers.

    python -m scripts.bench_fleet [--env dev] [--sizes 16 1000] [--calls 500] [--lists 100] [--walks 20]
        [--concurrency 8] [--rounds 3] [--seconds 3] [--contextforge auto|off] [--contextforge-venv DIR]

The fleet: N catalog entries cloned round-robin from the reference servers of examples/catalog (text,
units, notes: 4, 3 and 4 tools, each pinned by its hash), named `<server>-<index>` and enabled in the
environment; router.json is rendered from that catalog as for any fleet (its `fleet` section, tool pins
and access rules). Backends are shared: one process of each reference server, started as `mcpfleet dev`
starts it, answers for every clone of it, so the 1,000 entries are 1,000 server names in router.json
(3,667 tools) served by three processes. The caller holds every role the access rules name, so it sees
every tool; the router still checks each one.

Paths:
- fleet: the router's unified endpoint `/mcp`, with a token of the fleet audience;
- route: the router's per-server route `/servers/<name>/mcp`, with a token of that server's audience;
- direct: the server itself (its shared backend), no token;
- fastmcp: fastmcp 4.1.2 mounting one proxy per server (scripts/bench_fleet_peer.py): token checked,
  the same per-tool role rules, its list cache on (ResponseCachingMiddleware), the router's page size;
- fastmcp-nocache: the same with fastmcp's default, every tools/list asking every mounted server
  (lists only: its tools/call is fastmcp's);
- contextforge: IBM's ContextForge gateway's `/mcp` with every server registered with it
  (scripts/bench_fleet_contextforge.py, a venv of its own), legacy clients only (it answers no 2026-07-28
  request), when it installs and starts here; otherwise the output says why not.
No HAProxy in front: it sits before the router and any peer alike (scripts/bench_gateway.py measures it).

Measured, for each era of client (modern 2026-07-28 without a session, legacy 2025-11-25 with one each):
- call: tools/call of `word_count` on the first text clone;
- page: the first page of tools/list (`fleet.pageSize` of router.json; fastmcp is given the same
  `list_page_size`; ContextForge answers in one page); on route and direct, that one server's list;
- walk: every page of tools/list, the cursor followed, its time the sum of its pages' (the client's
  parsing between pages left out); on route and direct (modern only): the client walking every server
  itself, one tools/list per server.

How: each client is opened with the mcp SDK's own `Client` (the handshake, a tools/call and a
tools/list), those requests are captured and replayed, with fresh JSON-RPC ids (and cursors), over
keep-alive `http.client` connections, as scripts/bench_gateway.py does, without Accept-Encoding (so no
peer compresses). p50/p99 from sequential samples on one connection; per second from `--concurrency`
clients at once (calls and first pages). Sequential answers are checked in full outside the timing
(status, JSON-RPC id, no tool error and the expected result; the exact set of tool names of a walk, each
page's names among them); concurrent pages by status and shape only (parsing a 1,000-server page costs
the client as much CPU as the router spends on it). Samples stop at the count asked or once a path has
had `--seconds` per round (at least 3 samples), so the slow peers at 1,000 servers keep the run bounded:
`n` says how many were taken. CPU per sample of the proxy (router, fastmcp, ContextForge) and of the
three servers from /proc; memory (RSS) of each proxy at the end. The paths of one measurement take
turns, round after round, so drift on a busy machine hits them alike. Load average before and after.

Targets (issue 13): a unified tools/call adds at most 0.2 ms at p50 over the per-server route; a cached
tools/list over 1,000 servers' tools answers in at most 20 ms at p50 (judged on the first page and on
the full walk, both printed); both ahead of the peers (p50 and, where measured, per second).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import http.client
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

import httpx2
import jwt
import yaml
from anyio.from_thread import BlockingPortal, start_blocking_portal
from cryptography.hazmat.primitives import serialization
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.dev import process, router
from mcpfleet.dev.gateway import DEV_SUBJECT, TOKEN_LIFETIME_SECONDS, SigningKey, mint_tokens, signing_key
from mcpfleet.dev.launch import base_environment
from mcpfleet.errors import InvalidInput
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.router.local import healthy
from mcpfleet.router.names import namespace_name
from mcpfleet.stacks.loader import load_stack_config
from mcpfleet.verify.listing import MODERN_VERSION
from scripts import bench_fleet_contextforge as contextforge
from scripts.bench_gateway import (
    CATALOG,
    ENVIRONMENTS,
    LOOPBACK,
    STACKS,
    UNLIMITED,
    BenchError,
    Server,
    Template,
    cpu_seconds,
    free_ports,
    interrupted_on_sigterm,
    jsonrpc_answer,
    load_average,
    percentile,
    positive,
    start_servers,
    template_of,
)

REPO = Path(__file__).resolve().parent.parent
BASES = ("text", "units", "notes")
"""The reference servers cloned into the fleet, round-robin."""
CALL_TOOL = "word_count"
CALL_ARGUMENTS = {"text": "One endpoint for the whole fleet: each caller sees only what it may call."}
CALL_EXPECT = '"words":14'
SDK_TIMEOUT_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 120.0
START_SECONDS = 60.0
PEER_START_SECONDS = 600.0
LISTED_SECONDS = 300.0
PEER_TRIES = 3
AUDIT_SECONDS = 10.0
MIN_SAMPLES = 3
SLOW_SECONDS = 0.5
FASTMCP_SEPARATOR = "_"
DEFAULT_PAGE_SIZE = 500
MAX_CONCURRENCY = 32

# The targets (issue 13), on the 2-core machine.
TARGET_CALL_ADDED_MS = 0.2
TARGET_LIST_P50_MS = 20.0
TARGET_LIST_SERVERS = 1000

Era = Literal["modern", "legacy"]
ERAS: tuple[Era, ...] = ("modern", "legacy")
Op = Literal["call", "page", "walk"]
OPS: tuple[Op, ...] = ("call", "page", "walk")
PathName = Literal["fleet", "route", "direct", "fastmcp", "fastmcp-nocache", "contextforge"]
PATHS: tuple[PathName, ...] = ("fleet", "route", "direct", "fastmcp", "fastmcp-nocache", "contextforge")
PEERS: tuple[PathName, ...] = ("fastmcp", "fastmcp-nocache", "contextforge")
PROXY_ROLE: Mapping[PathName, str] = {
    "fleet": "router",
    "route": "router",
    "fastmcp": "fastmcp",
    "fastmcp-nocache": "fastmcp-nocache",
    "contextforge": "contextforge",
}


# --- The fleet ---------------------------------------------------------------------------------------


def clone_name(base: str, index: int) -> str:
    return f"{base}-{index:04d}"


def cloned_catalog(root: Path, size: int, env: str) -> Path:
    """size entries cloned round-robin from BASES of examples/catalog, each enabled in env."""
    samples = {
        base: yaml.safe_load((CATALOG / "servers" / f"{base}.yaml").read_text(encoding="utf-8"))
        for base in BASES
    }
    servers = root / "servers"
    servers.mkdir(parents=True)
    for index in range(size):
        base = BASES[index % len(BASES)]
        entry: dict[str, Any] = dict(samples[base])
        entry.pop("$schema", None)
        entry["name"] = clone_name(base, index)
        environments = dict(entry.get("environments") or {})
        environments.setdefault(env, {})
        entry["environments"] = environments
        (servers / f"{entry['name']}.yaml").write_text(
            yaml.safe_dump(entry, sort_keys=False), encoding="utf-8"
        )
    return root


def load_fleet(catalog: Path, env: str) -> Fleet:
    _, settings = load_stack_config(STACKS, env)
    # No rate limit in reach of the benchmark (the router counts /mcp against the gateway's limits): it
    # times the paths, not refusals.
    gateway = settings.gateway.model_copy(update={"rate_limits": UNLIMITED})
    settings = settings.model_copy(update={"gateway": gateway})
    return resolve_fleet(load_catalog(catalog), env, settings, f"stacks/Pulumi.{env}.yaml")  # type: ignore[arg-type]


def base_of(server: str) -> str:
    return server.rsplit("-", 1)[0]


@dataclass(frozen=True)
class FleetFacts:
    """What a fleet of clones holds, as the benchmark checks answers against it."""

    fleet: Fleet
    tools: dict[str, tuple[str, ...]]
    """Server -> its declared tools, sorted."""
    access: dict[str, list[dict[str, list[str]]]]
    roles: tuple[str, ...]
    """Every role the access rules name: the caller's."""
    call_server: str

    @property
    def size(self) -> int:
        return len(self.tools)

    @property
    def tool_count(self) -> int:
        return sum(len(tools) for tools in self.tools.values())

    def names(self, path: PathName) -> frozenset[str]:
        """Every tool's name as path serves it."""
        return frozenset(
            name_on(path, server, tool) for server, tools in self.tools.items() for tool in tools
        )


def name_on(path: PathName, server: str, tool: str) -> str:
    if path == "fleet":
        return namespace_name(server, tool)
    if path in ("fastmcp", "fastmcp-nocache"):
        return f"{server}{FASTMCP_SEPARATOR}{tool}"
    if path == "contextforge":
        return contextforge.tool_name(server, tool)
    return tool


def fleet_facts(fleet: Fleet) -> FleetFacts:
    tools = {s.name: tuple(sorted(t.name for t in s.spec.tools)) for s in fleet.servers}
    access = {
        s.name: [{"tools": sorted(rule.tools), "roles": sorted(rule.roles)} for rule in s.spec.access]
        for s in fleet.servers
    }
    roles = tuple(sorted({role for s in fleet.servers for rule in s.spec.access for role in rule.roles}))
    text = sorted(name for name in tools if base_of(name) == "text")
    if not text or CALL_TOOL not in tools[text[0]]:
        raise BenchError(f"the fleet has no text server with {CALL_TOOL}")
    return FleetFacts(fleet, tools, access, roles, text[0])


# --- Clients -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A captured request, ready to replay: its template and the headers to send."""

    template: Template
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, template: Template) -> Prepared:
        dropped = ("content-length", "accept-encoding")
        headers = tuple((k, v) for k, v in template.headers if k.lower() not in dropped)
        return cls(template, headers)

    def elsewhere(
        self,
        host: str | None = None,
        port: int | None = None,
        target: str | None = None,
        token: str | None = None,
    ) -> Prepared:
        """The same request to another server: address, path or bearer token replaced."""
        template = dataclasses.replace(
            self.template,
            host=host or self.template.host,
            port=port or self.template.port,
            target=target or self.template.target,
        )
        headers = self.headers
        if token is not None:
            headers = tuple((k, f"Bearer {token}" if k.lower() == "authorization" else v) for k, v in headers)
        return Prepared(template, headers)


@dataclass(frozen=True)
class Answer:
    seconds: float
    status: int
    content_type: str
    body: bytes
    request_id: int

    def result(self, where: str) -> dict[str, Any]:
        """The JSON-RPC result, checked: HTTP 200, the request's id, a result object."""
        if self.status != 200:
            raise BenchError(f"{where}: HTTP {self.status}: {self.body[:300].decode(errors='replace')}")
        answer = jsonrpc_answer(self.content_type, self.body)
        result = answer.get("result")
        if answer.get("id") != self.request_id or not isinstance(result, dict):
            raise BenchError(f"{where}: not the answer to request {self.request_id}: {str(answer)[:300]}")
        return result


class BenchClient:
    """One client: keep-alive connections (one per host and port) replaying captured requests."""

    def __init__(self) -> None:
        self.connections: dict[tuple[str, int], http.client.HTTPConnection] = {}
        self.next_id = 1_000_000
        self.reconnects = 0

    def send(self, prepared: Prepared, params: dict[str, Any] | None = None) -> Answer:
        request_id = self.next_id
        self.next_id += 1
        message = {**prepared.template.message, "id": request_id}
        if params is not None:
            message["params"] = params
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        headers = dict(prepared.headers)
        headers["content-length"] = str(len(body))
        key = (prepared.template.host, prepared.template.port)
        for attempt in range(2):
            connection = self.connections.get(key)
            if connection is None:
                connection = http.client.HTTPConnection(*key, timeout=REQUEST_TIMEOUT_SECONDS)
                self.connections[key] = connection
            started = time.perf_counter()
            try:
                connection.request(prepared.template.method, prepared.template.target, body, headers)
                response = connection.getresponse()
                content = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection first: reconnect, time the answered try.
                connection.close()
                del self.connections[key]
                self.reconnects += 1
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - started
            encoding = response.getheader("content-encoding", "identity")
            if encoding != "identity":
                raise BenchError(f"{key}: answered with {encoding} encoding, asked for none")
            return Answer(
                elapsed, response.status, response.getheader("content-type", ""), content, request_id
            )
        raise AssertionError("unreachable")

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


@dataclass(frozen=True)
class Captured:
    """What one SDK client sent: its tools/call and tools/list, each ready to replay."""

    call: Prepared
    listing: Prepared


@contextlib.asynccontextmanager
async def sdk_client(url: str, token: str | None, era: Era, tool: str) -> AsyncIterator[Captured]:
    """Open a client with the mcp SDK, make one tools/call and one tools/list, and yield them captured.
    The client (and a legacy session with it) stays open until exit."""
    posts: list[httpx2.Request] = []

    async def record(request: httpx2.Request) -> None:
        if request.method == "POST":
            posts.append(request)

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    mode = MODERN_VERSION if era == "modern" else "legacy"
    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=SDK_TIMEOUT_SECONDS, event_hooks={"request": [record]}
        ) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client,
    ):
        result = await client.call_tool(tool, CALL_ARGUMENTS)
        if result.is_error:
            raise BenchError(f"{url} ({era}): {tool} failed: {result.content}")
        await client.list_tools()
        found: dict[str, httpx2.Request] = {}
        for request in posts:
            method = json.loads(request.content or b"{}").get("method")
            if method in ("tools/call", "tools/list"):
                found.setdefault(method, request)
        if len(found) != 2:
            raise BenchError(f"{url} ({era}): the SDK sent {sorted(found)}, not tools/call and tools/list")
        yield Captured(
            Prepared.of(template_of(found["tools/call"])), Prepared.of(template_of(found["tools/list"]))
        )


T = TypeVar("T")


@contextlib.contextmanager
def held_open(portal: BlockingPortal, manager: AbstractAsyncContextManager[T]) -> Iterator[T]:
    """manager entered in the portal's event loop and left as if nothing had happened, as
    scripts/bench_gateway.py's held_open (typed for any value here): an interrupt of the main thread is
    not thrown into the client, and a client failing to close after an earlier failure hides nothing."""
    wrapped = portal.wrap_async_context_manager(manager)
    value = wrapped.__enter__()
    failed = True
    try:
        yield value
        failed = False
    finally:
        if failed:
            with contextlib.suppress(Exception):
                wrapped.__exit__(None, None, None)
        else:
            wrapped.__exit__(None, None, None)


# --- What one sample does ----------------------------------------------------------------------------


class Sample(NamedTuple):
    seconds: float
    items: int
    """Tools in the answer (a call: 1; unchecked concurrent pages: 0)."""
    missing: int = 0
    """Tools of the fleet a walk left out (a peer's list missing servers it failed to ask)."""


Unit = Callable[[BenchClient, bool], Sample]
"""One sample with a client; full checks when the flag is set, shape only otherwise."""


def call_unit(prepared: Prepared, where: str) -> Unit:
    def unit(client: BenchClient, full: bool) -> Sample:
        answer = client.send(prepared)
        result = answer.result(where)
        if result.get("isError") is not False:
            raise BenchError(f"{where}: the tool failed: {str(result)[:300]}")
        if CALL_EXPECT not in json.dumps(result, separators=(",", ":")):
            raise BenchError(f"{where}: the answer lacks {CALL_EXPECT!r}: {str(result)[:300]}")
        return Sample(answer.seconds, 1)

    return unit


def _params(prepared: Prepared, cursor: str | None) -> dict[str, Any] | None:
    params = prepared.template.message.get("params")
    if cursor is None:
        return None
    return {**(params if isinstance(params, dict) else {}), "cursor": cursor}


def _tools(result: dict[str, Any], where: str) -> list[str]:
    tools = result.get("tools")
    if not isinstance(tools, list):
        raise BenchError(f"{where}: tools/list answered without a tools list: {str(result)[:300]}")
    return [str(tool.get("name")) for tool in tools if isinstance(tool, dict)]


def page_unit(prepared: Prepared, names: frozenset[str], where: str) -> Unit:
    def unit(client: BenchClient, full: bool) -> Sample:
        answer = client.send(prepared)
        if not full:
            if answer.status != 200 or b'"tools":[' not in answer.body:
                raise BenchError(
                    f"{where}: HTTP {answer.status}: {answer.body[:300].decode(errors='replace')}"
                )
            return Sample(answer.seconds, 0)
        page = _tools(answer.result(where), where)
        strangers = set(page) - names
        if not page or strangers:
            raise BenchError(
                f"{where}: a page of {len(page)} tools, not the fleet's: {sorted(strangers)[:5]}"
            )
        return Sample(answer.seconds, len(page))

    return unit


def walk_unit(prepared: Prepared, names: frozenset[str], where: str, strict: bool) -> Unit:
    """Every page, the cursor followed; the exact set of names checked at the end. A walk that leaves tools
    out is an error when strict (the router), and counted otherwise (a peer that failed to ask a server);
    a name the fleet does not hold, or one served twice, is always an error."""

    def unit(client: BenchClient, full: bool) -> Sample:
        seconds, seen, cursor, pages = 0.0, [], None, 0
        while True:
            answer = client.send(prepared, _params(prepared, cursor))
            seconds += answer.seconds
            result = answer.result(where)
            seen += _tools(result, where)
            pages += 1
            cursor = result.get("nextCursor")
            if not cursor:
                break
            if pages > len(names) + 1:
                raise BenchError(f"{where}: more pages than tools: the cursor goes round")
        distinct = set(seen)
        missing, extra = sorted(names - distinct), sorted(distinct - names)
        if extra or len(distinct) != len(seen) or (missing and strict):
            raise BenchError(
                f"{where}: a walk of {pages} pages gave {len(seen)} tools, not the {len(names)} expected"
                f" (missing {missing[:5]}, unexpected {extra[:5]})"
            )
        return Sample(seconds, len(seen), len(missing))

    return unit


def servers_walk_unit(requests: Sequence[tuple[Prepared, frozenset[str]]], where: str) -> Unit:
    """The client's own walk: one tools/list per server, each answer that server's tools."""

    def unit(client: BenchClient, full: bool) -> Sample:
        seconds, count = 0.0, 0
        for prepared, names in requests:
            answer = client.send(prepared)
            seconds += answer.seconds
            listed = _tools(answer.result(f"{where} {prepared.template.target}"), where)
            if set(listed) != names:
                raise BenchError(
                    f"{where} {prepared.template.target}: listed {sorted(listed)}, not {sorted(names)}"
                )
            count += len(listed)
        return Sample(seconds, count)

    return unit


# --- Measuring ---------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One path's samples for one measurement, and the CPU spent meanwhile."""

    latencies: list[float] = field(default_factory=list)
    items: int = 0
    incomplete: int = 0
    """Samples (walks) that left tools of the fleet out."""
    missing: int = 0
    """The most tools one of them left out."""
    concurrent_count: int = 0
    concurrent_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_samples: int = 0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000

    @property
    def per_second(self) -> float | None:
        if not self.concurrent_count or self.concurrent_seconds <= 0:
            return None
        return self.concurrent_count / self.concurrent_seconds

    def cpu_ms(self, role: str) -> float | None:
        if role not in self.cpu or not self.cpu_samples:
            return None
        return self.cpu[role] / self.cpu_samples * 1000


@dataclass
class Probe:
    """One path of one measurement: its clients (the first sequential, the rest concurrent), what a
    sample does, and the processes whose CPU it charges."""

    path: PathName
    unit: Unit
    clients: list[BenchClient]
    pids: dict[str, int]
    count: int
    figures: Figures = field(default_factory=Figures)
    slow: bool = False
    """One sample took more than SLOW_SECONDS: no concurrent run."""


@contextlib.contextmanager
def charged(probe: Probe) -> Iterator[None]:
    before = {role: cpu_seconds(pid) for role, pid in probe.pids.items()}
    yield
    for role, pid in probe.pids.items():
        probe.figures.cpu[role] = probe.figures.cpu.get(role, 0.0) + cpu_seconds(pid) - before[role]


def sequential(probe: Probe, share: int, seconds: float, least: int) -> None:
    """Up to share samples; past seconds once it has least of them, past three times that with one."""
    started = time.monotonic()
    taken = 0
    with charged(probe):
        while taken < share:
            sample = probe.unit(probe.clients[0], True)
            probe.figures.latencies.append(sample.seconds)
            probe.figures.items = sample.items
            if sample.missing:
                probe.figures.incomplete += 1
                probe.figures.missing = max(probe.figures.missing, sample.missing)
            taken += 1
            spent = time.monotonic() - started
            if (spent > seconds and taken >= least) or spent > 3 * seconds:
                break
        probe.figures.cpu_samples += taken


def concurrent(probe: Probe, share: int, seconds: float, stop: threading.Event) -> None:
    """share samples spread over the probe's other clients, each on a thread; stopped at the deadline."""
    clients = probe.clients[1:]
    shares = [share // len(clients) + (1 if i < share % len(clients) else 0) for i in range(len(clients))]
    start = threading.Barrier(len(clients) + 1)
    done = [0] * len(clients)
    failures: list[BaseException] = []
    deadline = [0.0]

    def work(index: int) -> None:
        try:
            start.wait()
            while done[index] < shares[index] and not stop.is_set():
                probe.unit(clients[index], False)
                done[index] += 1
                if time.monotonic() > deadline[0]:
                    return
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    with charged(probe):
        deadline[0] = time.monotonic() + seconds
        start.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        probe.figures.cpu_samples += sum(done)
    if failures:
        raise failures[0]
    probe.figures.concurrent_count += sum(done)
    probe.figures.concurrent_seconds += elapsed


def chunks(total: int, rounds: int) -> list[int]:
    return [total // rounds + (1 if index < total % rounds else 0) for index in range(rounds)]


def measure(probes: Sequence[Probe], rounds: int, seconds: float, stop: threading.Event) -> None:
    """The probes take turns, round after round; each starts a round first in turn. Warm-up first: a
    sample per client (connections opened, caches filled); a path whose sample takes more than
    SLOW_SECONDS gets no concurrent run (its per second would cost minutes) and no refresh."""
    slow: set[int] = set()
    for probe in probes:
        if probe.unit(probe.clients[0], True).seconds > SLOW_SECONDS:
            slow.add(id(probe))
            probe.slow = True
            del probe.clients[1:]
        for client in probe.clients[1:]:
            probe.unit(client, False)
    rounds = max(1, min(rounds, min(probe.count for probe in probes)))
    per_round = seconds / rounds
    least = max(1, math.ceil(MIN_SAMPLES / rounds))
    for index in range(rounds):
        order = list(probes[index % len(probes) :]) + list(probes[: index % len(probes)])
        for probe in order:
            if id(probe) not in slow:
                # One unmeasured sample: idle keep-alive connections closed meanwhile reopen untimed.
                probe.unit(probe.clients[0], True)
            sequential(probe, chunks(probe.count, rounds)[index], per_round, least)
        for probe in order:
            if len(probe.clients) > 1:
                for client in probe.clients[1:]:
                    probe.unit(client, False)
                concurrent(probe, chunks(probe.count, rounds)[index], per_round, stop)


# --- The stand ---------------------------------------------------------------------------------------


@dataclass
class Running:
    """A proxy the benchmark started: its process id and where it answers MCP."""

    pid: int
    url: str
    started_at: float
    """time.monotonic() when it was started."""
    started_seconds: float
    """From start until it answered (healthy, or its port open)."""
    ready_seconds: float = 0.0
    """From start until it served the whole fleet's tools."""


@dataclass
class Stand:
    facts: FleetFacts
    backends: dict[str, Server]
    key: SigningKey
    router: Running
    router_config: dict[str, Any]
    audit: Path
    tokens: dict[str, str]
    fleet_token: str | None
    peers: dict[PathName, Running] = field(default_factory=dict)
    contextforge_token: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def fleet_path(self) -> str | None:
        fleet = self.router_config.get("fleet")
        return fleet.get("publicPath") if isinstance(fleet, dict) else None

    @property
    def page_size(self) -> int:
        fleet = self.router_config.get("fleet")
        return int(fleet.get("pageSize", DEFAULT_PAGE_SIZE)) if isinstance(fleet, dict) else DEFAULT_PAGE_SIZE

    def fleet_audience(self) -> str:
        fleet = self.router_config.get("fleet")
        if isinstance(fleet, dict) and isinstance(fleet.get("audience"), str):
            return str(fleet["audience"])
        return f"https://{self.facts.fleet.settings.domain}/mcp"

    def backend_url(self, server: str) -> str:
        return self.backends[base_of(server)].url

    def pids(self, path: PathName) -> dict[str, int]:
        pids = {f"server-{name}": server.pid for name, server in self.backends.items()}
        role = PROXY_ROLE.get(path)
        if role == "router":
            pids[role] = self.router.pid
        elif path in self.peers:
            pids[PROXY_ROLE[path]] = self.peers[path].pid
        return pids


def public_pem(key: SigningKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fleet_token(facts: FleetFacts, key: SigningKey, audience: str) -> str:
    auth = facts.fleet.settings.gateway.auth
    now = int(time.time())
    claims = {
        "iss": auth.issuer,
        "aud": audience,
        auth.subject_claim: DEV_SUBJECT,
        auth.roles_claim: " ".join(facts.roles),
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
    }
    return jwt.encode(claims, key, algorithm=auth.algorithm)


def start_backends(env: str, children: list[process.Child], run_dir: Path) -> dict[str, Server]:
    """One process of each reference server, as `mcpfleet dev` starts it."""
    fleet = load_fleet(CATALOG, env)
    bases = dataclasses.replace(fleet, servers=tuple(s for s in fleet.servers if s.name in BASES))
    missing = sorted(set(BASES) - {s.name for s in bases.servers})
    if missing:
        raise BenchError(f"{', '.join(missing)} not enabled in {env} (examples/catalog)")
    return start_servers(bases, children, run_dir)


def start_router(
    stand_dir: Path,
    facts: FleetFacts,
    backends: Mapping[str, Server],
    key: SigningKey,
    children: list[process.Child],
) -> tuple[Running, dict[str, Any], Path]:
    """The router as `mcpfleet dev` runs it, router.json rendered from the fleet of clones."""
    port, metrics_port = free_ports(2)
    issuer = stand_dir / "issuer.pem"
    issuer.write_bytes(public_pem(key))
    upstreams = {server: [backends[base_of(server)].address] for server in facts.tools}
    files = router.prepare(facts.fleet, upstreams, issuer, stand_dir, port, metrics_port)
    config = json.loads(files.config.read_text(encoding="utf-8"))
    audit = stand_dir / "logs" / router.AUDIT_FILE
    started = time.monotonic()
    child = process.start(
        "router",
        files.argv,
        stand_dir / "logs" / router.LOG_FILE,
        env=base_environment(os.environ),
        port=port,
        output=audit,
    )
    children.append(child)
    deadline = time.monotonic() + START_SECONDS
    while not healthy(LOOPBACK, metrics_port):
        if not child.running() or time.monotonic() > deadline:
            raise BenchError(child.failure("did not become healthy").args[0])
        time.sleep(0.05)
    running = Running(child.process.pid, f"http://{LOOPBACK}:{port}", started, time.monotonic() - started)
    return running, config, audit


def start_fastmcp(path: PathName, stand: Stand, stand_dir: Path, children: list[process.Child]) -> Running:
    """scripts/bench_fleet_peer.py over the fleet; ready once it lists the whole fleet's tools."""
    port = free_ports(1)[0]
    auth = stand.facts.fleet.settings.gateway.auth
    issuer = stand_dir / "issuer.pem"
    config = {
        "host": LOOPBACK,
        "port": port,
        "path": "/mcp",
        "allowedHosts": [f"{LOOPBACK}:{port}"],
        "pageSize": stand.page_size,
        "auth": {
            "publicKeyFile": str(issuer),
            "issuer": auth.issuer,
            "audience": stand.fleet_audience(),
            "algorithm": auth.algorithm,
            "rolesClaim": auth.roles_claim,
        },
        "servers": {
            server: {"url": stand.backend_url(server), "access": stand.facts.access[server]}
            for server in stand.facts.tools
        },
    }
    config_file = stand_dir / f"{path}.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    argv = [sys.executable, "-m", "scripts.bench_fleet_peer", "--config", str(config_file)]
    argv += ["--list-cache", "off" if path == "fastmcp-nocache" else "on"]
    started = time.monotonic()
    child = process.start(
        path, argv, stand_dir / "logs" / f"{path}.log", env=base_environment(os.environ), cwd=REPO, port=port
    )
    children.append(child)
    try:
        process.wait_for_port(child, LOOPBACK, port, PEER_START_SECONDS)
    except process.ProcessFailed as exc:
        raise BenchError(str(exc)) from None
    return Running(child.process.pid, f"http://{LOOPBACK}:{port}/mcp", started, time.monotonic() - started)


def start_contextforge(
    stand: Stand, venv: Path, stand_dir: Path, children: list[process.Child], echo: Callable[[str], None]
) -> None:
    """ContextForge with every server of the fleet registered; a note saying why not when it cannot."""
    try:
        spent = contextforge.install(venv, stand_dir.parent / "contextforge-install.log")
        if spent:
            echo(
                f"  contextforge: {contextforge.PACKAGE}=={contextforge.VERSION} installed in {venv}"
                f" in {spent:.0f} s"
            )
        port = free_ports(1)[0]
        run_dir = stand_dir / "contextforge"
        run_dir.mkdir(parents=True)
        env = contextforge.environment(run_dir, port, os.environ)
        started = time.monotonic()
        child = process.start(
            "contextforge",
            contextforge.command(venv, port),
            stand_dir / "logs" / "contextforge.log",
            env=env,
            cwd=run_dir,
            port=port,
        )
        children.append(child)
        contextforge.wait_healthy(port, child.running)
        token = contextforge.admin_token(venv, env)
        settings = contextforge.Settings(port, env, token)
        registered = contextforge.register(settings, {s: stand.backend_url(s) for s in stand.facts.tools})
        echo(f"  contextforge: {stand.facts.size} servers registered in {registered:.1f} s")
        peer = Running(child.process.pid, settings.mcp_url, started, time.monotonic() - started)
        names = stand.facts.names("contextforge")
        peer.ready_seconds, listed = wait_listed(
            peer.url, token, names, started, "contextforge", strict=False, era="legacy"
        )
        echo(
            f"  contextforge: listed {listed:,} of {len(names):,} tools,"
            f" {peer.ready_seconds:.1f} s after its start"
        )
        if listed < len(names):
            stand.notes.append(
                f"contextforge never listed every tool of the fleet: {listed:,} of {len(names):,}"
            )
        stand.peers["contextforge"] = peer
        stand.contextforge_token = token
    except contextforge.Unavailable as exc:
        stand.notes.append(f"contextforge not measured: {exc}")
        echo(f"  contextforge not measured: {exc}")


def wait_listed(
    url: str,
    token: str | None,
    names: frozenset[str],
    started: float,
    what: str,
    strict: bool,
    era: Era = "modern",
) -> tuple[float, int]:
    """Until a walk of url's tools/list gives every name: the seconds since started, and the names it
    gave. When not strict (a peer), PEER_TRIES complete walks that leave names out are accepted too (the
    benchmark reports how many it leaves out)."""
    deadline = time.monotonic() + LISTED_SECONDS
    last, tries = "", 0
    while time.monotonic() < deadline:
        try:
            with start_blocking_portal() as portal, held_open(portal, sdk_lister(url, token, era)) as listed:
                if listed == names or (not strict and listed < names and tries + 1 >= PEER_TRIES):
                    return time.monotonic() - started, len(listed)
                tries += 1
                last = f"{len(listed & names)} of {len(names)} tools listed"
        except Exception as exc:  # retried until the deadline; the last one is reported
            last = str(exc)[:300]
        time.sleep(1.0)
    raise BenchError(f"{what} did not list the fleet's tools within {LISTED_SECONDS:.0f} s: {last}")


@contextlib.asynccontextmanager
async def sdk_lister(url: str, token: str | None, era: Era) -> AsyncIterator[frozenset[str]]:
    """Every tool name an SDK client finds at url, every page walked."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    mode = MODERN_VERSION if era == "modern" else "legacy"
    async with (
        httpx2.AsyncClient(headers=headers, timeout=SDK_TIMEOUT_SECONDS) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client,
    ):
        names: set[str] = set()
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            names.update(tool.name for tool in page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        yield frozenset(names)


def start_stand(
    size: int,
    args: argparse.Namespace,
    backends: dict[str, Server],
    run_dir: Path,
    children: list[process.Child],
    echo: Callable[[str], None],
) -> Stand:
    stand_dir = run_dir / f"fleet-{size}"
    facts = fleet_facts(load_fleet(cloned_catalog(stand_dir / "catalog", size, args.env), args.env))
    key = signing_key(facts.fleet.settings.gateway.auth.algorithm)
    running, config, audit = start_router(stand_dir, facts, backends, key, children)
    stand = Stand(facts, backends, key, running, config, audit, mint_tokens(facts.fleet, key), None)
    if stand.fleet_path is None:
        stand.notes.append(
            "fleet not measured: this router.json has no `fleet` section (no /mcp in this build)"
        )
        echo(f"  {stand.notes[-1]}")
    else:
        stand.fleet_token = fleet_token(facts, key, stand.fleet_audience())
        running.ready_seconds, _ = wait_listed(
            running.url + stand.fleet_path,
            stand.fleet_token,
            facts.names("fleet"),
            running.started_at,
            "the router",
            strict=True,
        )
        echo(
            f"  router: healthy in {running.started_seconds:.1f} s, listed all {facts.size} servers in"
            f" {running.ready_seconds:.1f} s"
        )
    token = stand.fleet_token or fleet_token(facts, key, stand.fleet_audience())
    peers: tuple[PathName, ...] = ("fastmcp", "fastmcp-nocache")
    for path in peers:
        peer = start_fastmcp(path, stand, stand_dir, children)
        stand.peers[path] = peer
        names = facts.names(path)
        peer.ready_seconds, listed = wait_listed(peer.url, token, names, peer.started_at, path, strict=False)
        what = (
            "all"
            if listed == len(names)
            else f"{listed:,} of {len(names):,} tools (its best of {PEER_TRIES} walks)"
        )
        echo(
            f"  {path}: serving in {peer.started_seconds:.1f} s, listed {what} in {peer.ready_seconds:.1f} s"
        )
        if listed < len(names):
            stand.notes.append(f"{path} never listed every tool of the fleet: {listed:,} of {len(names):,}")
    if args.contextforge == "off":
        stand.notes.append("contextforge not measured: --contextforge off")
    else:
        start_contextforge(stand, args.contextforge_venv, stand_dir, children, echo)
    return stand


# --- Probes ------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One (op, era) of one fleet size: the paths measured side by side."""

    size: int
    op: Op
    era: Era
    probes: dict[PathName, Probe]


def url_token(stand: Stand, path: PathName) -> tuple[str, str | None] | None:
    """Where path's clients connect and the token they send; None when path is not in this run."""
    server = stand.facts.call_server
    if path == "fleet":
        if stand.fleet_path is None or stand.fleet_token is None:
            return None
        return stand.router.url + stand.fleet_path, stand.fleet_token
    if path == "route":
        return f"{stand.router.url}/servers/{server}/mcp", stand.tokens[server]
    if path == "direct":
        return stand.backend_url(server), None
    if path == "contextforge":
        if path not in stand.peers:
            return None
        return stand.peers[path].url, stand.contextforge_token
    token = stand.fleet_token or fleet_token(stand.facts, stand.key, stand.fleet_audience())
    return stand.peers[path].url, token


def probes_for(
    stand: Stand, era: Era, portal: BlockingPortal, stack: contextlib.ExitStack, args: argparse.Namespace
) -> list[Measurement]:
    """Every measurement of one era on stand, its clients opened (held open by stack)."""
    facts = stand.facts
    server = facts.call_server
    paths = [p for p in PATHS if url_token(stand, p) is not None]
    if era == "modern":
        # ContextForge answers no 2026-07-28 request.
        paths = [p for p in paths if p != "contextforge"]
    else:
        # fastmcp's lists take the same path whatever the era: its cache-less set-up once is enough.
        paths = [p for p in paths if p != "fastmcp-nocache"]
    captured: dict[PathName, list[Captured]] = {}
    clients: dict[PathName, list[BenchClient]] = {}
    sessions = args.concurrency + 1 if era == "legacy" else 1
    for path in paths:
        found = url_token(stand, path)
        assert found is not None
        url, token = found
        tool = CALL_TOOL if path in ("route", "direct") else name_on(path, server, CALL_TOOL)
        opened = [
            stack.enter_context(held_open(portal, sdk_client(url, token, era, tool))) for _ in range(sessions)
        ]
        captured[path] = opened * (args.concurrency + 1) if sessions == 1 else opened
        clients[path] = [BenchClient() for _ in range(args.concurrency + 1)]
        for client in clients[path]:
            stack.callback(client.close)

    def probe(
        path: PathName, unit_for: Callable[[Captured], Unit], count: int, concurrent_too: bool
    ) -> Probe:
        units = [unit_for(c) for c in captured[path]]
        # Each client replays what its own SDK session sent.
        per_client = {id(client): units[i] for i, client in enumerate(clients[path])}

        def unit(client: BenchClient, full: bool) -> Sample:
            return per_client[id(client)](client, full)

        chosen = list(clients[path]) if concurrent_too else clients[path][:1]
        return Probe(path, unit, chosen, stand.pids(path), count)

    where = f"{facts.size} servers, {era}"
    measurements: list[Measurement] = []
    call_paths = [p for p in paths if p != "fastmcp-nocache"]

    def calls(path: PathName) -> Callable[[Captured], Unit]:
        return lambda captured: call_unit(captured.call, f"{where}, {path} call")

    def pages(path: PathName, names: frozenset[str]) -> Callable[[Captured], Unit]:
        return lambda captured: page_unit(captured.listing, names, f"{where}, {path} page")

    def walks(path: PathName, names: frozenset[str]) -> Callable[[Captured], Unit]:
        # Only the router must list the whole fleet every time; a peer's gaps are counted.
        return lambda captured: walk_unit(captured.listing, names, f"{where}, {path} walk", path == "fleet")

    call_paths = [p for p in paths if p != "fastmcp-nocache"]
    measurements.append(
        Measurement(facts.size, "call", era, {p: probe(p, calls(p), args.calls, True) for p in call_paths})
    )
    single = frozenset(facts.tools[server])
    page_probes: dict[PathName, Probe] = {}
    walk_probes: dict[PathName, Probe] = {}
    for path in paths:
        names = single if path in ("route", "direct") else facts.names(path)
        page_probes[path] = probe(path, pages(path, names), args.lists, True)
        if path not in ("route", "direct"):
            walk_probes[path] = probe(path, walks(path, names), args.walks, False)
    if era == "modern":
        # The client's own walk over every server: per-server route and direct.
        for path in ("route", "direct"):
            if path not in captured:
                continue
            base = captured[path][0].listing
            requests = []
            for name, tools in sorted(facts.tools.items()):
                if path == "route":
                    prepared = base.elsewhere(target=f"/servers/{name}/mcp", token=stand.tokens[name])
                else:
                    backend = stand.backends[base_of(name)]
                    prepared = base.elsewhere(host=LOOPBACK, port=backend.port)
                requests.append((prepared, frozenset(tools)))
            unit = servers_walk_unit(requests, f"{where}, {path} walk")
            walk_probes[path] = Probe(path, unit, clients[path][:1], stand.pids(path), args.walks)
    measurements.append(Measurement(facts.size, "page", era, page_probes))
    measurements.append(Measurement(facts.size, "walk", era, walk_probes))
    return measurements


# --- Report ------------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_table(measurements: Sequence[Measurement]) -> list[str]:
    header = (
        f"{'servers':>7} {'op':<4} {'era':<6} {'path':<15} {'items':>5} {'n':>5} {'p50 ms':>9} {'p99 ms':>9}"
        f" {'per s':>7} {'proxy cpu':>9} {'server cpu':>10} {'vs route':>9} {'x fleet':>8} {'per s x':>8}"
    )
    lines = [header, "-" * len(header)]
    for m in measurements:
        fleet = m.probes.get("fleet")
        route = m.probes.get("route")
        for path, probe in m.probes.items():
            f = probe.figures
            if not f.latencies:
                continue
            proxy = f.cpu_ms(PROXY_ROLE[path]) if path in PROXY_ROLE else None
            servers = [v for role in f.cpu if role.startswith("server-") if (v := f.cpu_ms(role)) is not None]
            row = (
                f"{m.size:>7} {m.op:<4} {m.era:<6} {path:<15} {f.items:>5} {len(f.latencies):>5}"
                f" {f.p50_ms:>9.3f} {f.p99_ms:>9.3f} {_f(f.per_second, 0):>7} {_f(proxy):>9}"
                f" {_f(sum(servers) if servers else None):>10}"
            )
            vs_route = (
                f"{f.p50_ms - route.figures.p50_ms:+.3f}"
                if m.op == "call" and path == "fleet" and route is not None and route.figures.latencies
                else ""
            )
            times = ""
            rate = ""
            if fleet is not None and fleet.figures.latencies and path != "fleet":
                times = f"{f.p50_ms / fleet.figures.p50_ms:.2f}x"
                mine, theirs = f.per_second, fleet.figures.per_second
                rate = f"{mine / theirs:.2f}x" if mine and theirs else ""
            lines.append(row + f" {vs_route:>9} {times:>8} {rate:>8}")
    for m in measurements:
        for path, probe in m.probes.items():
            f = probe.figures
            if f.incomplete:
                lines.append(
                    f"incomplete: {m.size} servers, {m.era} {m.op} through {path}: {f.incomplete} of"
                    f" {len(f.latencies)} walks left tools out (up to {f.missing} of them)"
                )
            if probe.slow:
                lines.append(
                    f"slow: {m.size} servers, {m.era} {m.op} through {path}: over {SLOW_SECONDS} s a sample,"
                    " so no concurrent run"
                )
    lines += [
        "items: tools per sample (a call: 1); n: sequential samples; p50/p99: their latency; per s: samples",
        "a second from the concurrent clients (calls and first pages); cpu: ms of CPU per sample of the",
        "proxy (router, fastmcp or ContextForge) and of the three servers together; vs route: fleet's p50",
        "minus the per-server route's; x fleet: the path's p50 / the fleet endpoint's (above 1: the fleet",
        "endpoint is faster); per s x: the path's per second / the fleet endpoint's (below 1: it is faster)",
    ]
    return lines


def verdicts(measurements: Sequence[Measurement]) -> list[str]:
    """Each target, met or not, with the figures it was judged on."""
    lines: list[str] = []
    by = {(m.size, m.op, m.era): m for m in measurements}
    sizes = sorted({m.size for m in measurements})
    for size in sizes:
        for era in ERAS:
            m = by.get((size, "call", era))
            if m is None:
                continue
            fleet, route = m.probes.get("fleet"), m.probes.get("route")
            if fleet is None or route is None or not fleet.figures.latencies:
                lines.append(
                    f"{size} servers, {era}: unified tools/call over the per-server route: not measured"
                )
                continue
            added = fleet.figures.p50_ms - route.figures.p50_ms
            cpu = (fleet.figures.cpu_ms("router") or 0.0) - (route.figures.cpu_ms("router") or 0.0)
            lines.append(
                f"{size} servers, {era}: unified tools/call adds {added:+.3f} ms at p50 over the per-server"
                " route"
                f" (<= {TARGET_CALL_ADDED_MS}; router CPU {cpu:+.3f} ms per call):"
                f" {'met' if added <= TARGET_CALL_ADDED_MS else 'NOT met'}"
            )
    large = [size for size in sizes if size >= TARGET_LIST_SERVERS]
    if not large:
        lines.append(
            f"cached tools/list over {TARGET_LIST_SERVERS:,} servers' tools: not judged"
            " (no such fleet in this run)"
        )
    for size in large:
        for era in ERAS:
            judged: tuple[tuple[Op, str], ...] = (("page", "first page"), ("walk", "full walk"))
            for op, what in judged:
                m = by.get((size, op, era))
                fleet = m.probes.get("fleet") if m else None
                if fleet is None or not fleet.figures.latencies:
                    lines.append(f"{size} servers, {era}: cached tools/list {what}: not measured")
                    continue
                f = fleet.figures
                lines.append(
                    f"{size} servers, {era}: cached tools/list, {what} ({f.items} of the tools),"
                    f" p50 {f.p50_ms:.2f} ms"
                    f" (<= {TARGET_LIST_P50_MS:.0f}; router CPU {_f(f.cpu_ms('router'), 2)} ms):"
                    f" {'met' if f.p50_ms <= TARGET_LIST_P50_MS else 'NOT met'}"
                )
    for m in measurements:
        fleet = m.probes.get("fleet")
        peers = [(p, m.probes[p]) for p in PEERS if p in m.probes and m.probes[p].figures.latencies]
        if fleet is None or not fleet.figures.latencies or not peers:
            continue
        ahead = True
        parts = []
        for path, probe in peers:
            f, mine = probe.figures, fleet.figures
            part = f"{path} {f.p50_ms:.2f} ms"
            faster = mine.p50_ms < f.p50_ms
            if mine.per_second and f.per_second:
                part += f", {f.per_second:.0f}/s"
                faster = faster and mine.per_second > f.per_second
            ahead = ahead and faster
            parts.append(part)
        rate = f", {fleet.figures.per_second:.0f}/s" if fleet.figures.per_second else ""
        lines.append(
            f"{m.size} servers, {m.era}, {m.op}: fleet endpoint {fleet.figures.p50_ms:.2f} ms{rate} against"
            f" {'; '.join(parts)}: {'ahead' if ahead else 'NOT ahead'} of the peers"
        )
    return lines


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def check_audited(stand: Stand, calls: int) -> None:
    """Every tools/call the router answered for the benchmark has its full audit record."""
    deadline = time.monotonic() + AUDIT_SECONDS
    seen = 0
    while time.monotonic() < deadline:
        seen = 0
        for line in stand.audit.read_text(encoding="utf-8").splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if (
                    record.get("event"),
                    record.get("method"),
                    record.get("server"),
                    record.get("outcome"),
                ) == ("message", "tools/call", stand.facts.call_server, "ok"):
                    seen += 1
        if seen >= calls:
            return
        time.sleep(0.2)
    raise BenchError(f"{calls} tools/call through the router, only {seen} audit records of them")


# --- Main --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_fleet",
        description=(__doc__ or "").splitlines()[0],
        epilog="Prints figures, never judges them by its exit status. Stops all it started, Ctrl-C included.",
    )
    parser.add_argument("--env", default="dev", choices=ENVIRONMENTS, help="Stack (default: %(default)s).")
    parser.add_argument(
        "--sizes", type=positive, nargs="+", default=[16, 1000], help="Fleet sizes (default: %(default)s)."
    )
    parser.add_argument(
        "--calls",
        type=positive,
        default=500,
        help="tools/call samples per path and kind (default: %(default)s).",
    )
    parser.add_argument(
        "--lists",
        type=positive,
        default=100,
        help="First-page samples per path and kind (default: %(default)s).",
    )
    parser.add_argument(
        "--walks", type=positive, default=20, help="Walk samples per path (default: %(default)s)."
    )
    parser.add_argument(
        "--concurrency", type=positive, default=8, help="Clients at once (default: %(default)s)."
    )
    parser.add_argument(
        "--rounds", type=positive, default=3, help="Turns the paths take (default: %(default)s)."
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=3.0,
        help="Time a path may take per measurement and kind, past which it stops at 3 samples or more"
        " (default: %(default)s).",
    )
    parser.add_argument(
        "--contextforge",
        choices=("auto", "off"),
        default="auto",
        help="Measure ContextForge when it installs and starts here (default: %(default)s).",
    )
    parser.add_argument(
        "--contextforge-venv",
        type=Path,
        default=REPO / "build" / "bench" / "contextforge",
        help="Its throwaway venv, made on first use (default: build/bench/contextforge).",
    )
    args = parser.parse_args(argv)
    if args.concurrency > MAX_CONCURRENCY:
        parser.error(f"--concurrency ({args.concurrency}) cannot exceed {MAX_CONCURRENCY}")
    if args.seconds <= 0:
        parser.error("--seconds must be above 0")
    return args


def benchmark(
    args: argparse.Namespace, run_dir: Path, echo: Callable[[str], None]
) -> tuple[list[Measurement], list[str]]:
    echo(
        f"fleet endpoint benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC: environment"
        f" {args.env}, fleets of {', '.join(f'{s:,}' for s in args.sizes)} servers cloned round-robin from"
        f" {', '.join(BASES)} (examples/catalog), {os.cpu_count()} CPUs"
    )
    echo(
        f"  backends shared: one process each of {', '.join(BASES)} answers for all of its clones;"
        f" tools/call: {CALL_TOOL} on the first text clone"
    )
    echo(f"  load average before: {load_average()}")
    stop = threading.Event()
    children: list[process.Child] = []
    measurements: list[Measurement] = []
    notes: list[str] = []
    try:
        backends = start_backends(args.env, children, run_dir)
        for size in args.sizes:
            stand_children: list[process.Child] = []
            try:
                echo(f"fleet of {size:,} servers:")
                stand = start_stand(size, args, backends, run_dir, stand_children, echo)
                echo(
                    f"  {stand.facts.tool_count:,} tools; page size {stand.page_size};"
                    f" load average {load_average()}"
                )
                with start_blocking_portal() as portal:
                    for era in ERAS:
                        with contextlib.ExitStack() as stack:
                            found = probes_for(stand, era, portal, stack, args)
                            for m in found:
                                if m.probes:
                                    measure(list(m.probes.values()), args.rounds, args.seconds, stop)
                                    echo(f"  {era} {m.op}: measured ({load_average()})")
                            measurements += found
                routed = sum(
                    len(m.probes[p].figures.latencies) + m.probes[p].figures.concurrent_count
                    for m in measurements
                    if m.size == size and m.op == "call"
                    for p in ("fleet", "route")
                    if p in m.probes
                )
                check_audited(stand, routed)
                memory = [("router", stand.router.pid)] + [(p, r.pid) for p, r in stand.peers.items()]
                echo(
                    "  memory (RSS): "
                    + ", ".join(f"{name} {_f(rss_mib(pid), 0)} MiB" for name, pid in memory)
                )
                notes += [f"{size} servers: {note}" for note in stand.notes]
            finally:
                for child in reversed(stand_children):
                    process.stop(child)
        echo(f"  load average after: {load_average()}")
        return measurements, notes
    finally:
        stop.set()
        for child in reversed(children):
            process.stop(child)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # The SDK warns when a called tool is not on the first page of the list it read (the fleet's tools
    # span pages): true and expected here, and it would fill the output.
    logging.getLogger("client").setLevel(logging.ERROR)
    with interrupted_on_sigterm(), tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch:
        try:
            measurements, notes = benchmark(args, Path(scratch), lambda line: print(line, flush=True))
        except KeyboardInterrupt:
            print("interrupted: every process started was stopped", file=sys.stderr)
            return 130
        except (BenchError, InvalidInput, subprocess.SubprocessError) as exc:
            print(f"bench_fleet: {exc}", file=sys.stderr)
            return 1
    print()
    for line in render_table(measurements):
        print(line)
    for note in notes:
        print(f"note: {note}")
    for line in verdicts(measurements):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
