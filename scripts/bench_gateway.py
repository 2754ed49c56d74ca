"""Benchmark the gateway's data plane: tools/call straight to a server, through HAProxy alone, through
HAProxy and the MCP router, and through HAProxy and a peer of the router (fastmcp's proxy), in one run.

    python -m scripts.bench_gateway [--env dev] [--calls 1500] [--concurrency 8] [--warmup 200] [--rounds 10]
        [--peer-backend shared|fresh] [--profile DIR]

Two reference servers of examples/catalog start as `mcpfleet dev` starts them: text (stateless) for
modern clients (2026-07-28: no session, `mcp-method`/`mcp-name` headers) and notes (stateful) for legacy
clients (2025-11-25: `initialize`, then `mcp-session-id` on every request, a session seeded with notes
that each call searches).

Paths, for each mode:
- direct: the server itself, plain HTTP on its loopback port, no token (a caller inside the cluster);
- haproxy: the environment's HAProxy configuration (every edge check: bearer token signature, issuer,
  audience and claim types, route, rate counters, request id and forwarding headers, access log) with
  its router pool replaced by the servers themselves, the public path `/servers/<name>/mcp` rewritten
  to the server's own: the gateway as it was before the router, so the router's own cost is the
  difference between this path and haproxy+router;
- haproxy+hop: the same configuration forwarding to a Python hop that checks nothing, built and set up
  as the router is (uvicorn on uvloop and httptools, a pooled aiohttp client: scripts/bench_hop.py):
  the floor under the router, so the router's own work is its difference to this path;
- haproxy+router: the environment's configuration as rendered, forwarding to the MCP router (the same
  code as deployed, `python -m mcpfleet.router`, with router.json rendered from the fleet and the
  servers' local addresses), which checks the token again, parses the message strictly, applies the
  catalog's access rules, seals legacy sessions, writes its audit record and forwards to the server;
- haproxy+fastmcp: the same HAProxy configuration forwarding to fastmcp's proxy (scripts/bench_peer.py:
  token checked, message parsed and sent on by its own client) in front of the same server.

TLS ends at the load balancer in every HAProxy configuration here (as with `tls: acm`), so that all
paths share direct's transport. Rate limits are raised to the most a stack may set, so that no call is
refused (the counters are still tracked on every request). The paths are measured in turn, round
after round, so drift on a busy machine hits them alike.

How calls are sent: each client is first opened with the mcp SDK's own `Client`, which runs the
handshake, seeds the legacy session and makes one tools/call; that request's exact method, path,
headers (protocol version, `mcp-method`, `mcp-name`, session id, bearer token) and body are captured
and then replayed, with a fresh JSON-RPC id each time, over one keep-alive `http.client` connection per
client: the SDK client's own work (about 2 ms a call here) would otherwise shrink every ratio towards 1.
Callers through HAProxy send the environment's public name as Host, as its real clients do. Every answer
is checked (status, JSON-RPC id, a result that is no tool error, the expected content) before it counts,
and every measured call through the router must have its audit record.

Printed: calls/s from `--concurrency` clients at once; p50 and p99 latency of sequential calls on one
connection; CPU per call of the server, of HAProxy and of the proxy in between (router or fastmcp),
from /proc/<pid>/stat (utime + stime) over the measured calls; each path's ratios to direct; the
targets (the router adds at most 0.5 ms at p50 and 2 ms at p99 over HAProxy alone, calls/s at least
0.7x direct, faster than the peer), met or not; the load average before and after. With --profile,
py-spy samples the router while it is measured and the hottest functions are printed (the raw stacks
are written to DIR for flame graphs).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import http.client
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx2
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from components.gateway.config import ROUTER_BACKEND, Upstream, public_path
from components.manifests.gateway import terminates_tls
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.dev import gateway, process, router
from mcpfleet.dev.launch import Tools, base_environment, child_environment, plan_launches
from mcpfleet.errors import InvalidInput, display_path
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.model import RateLimits
from mcpfleet.router.local import healthy
from mcpfleet.stacks.loader import load_stack_config, stack_file
from mcpfleet.stacks.models import Gateway
from mcpfleet.verify.listing import MODERN_VERSION

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "examples" / "catalog"
STACKS = REPO / "stacks"
ENVIRONMENTS = ("local", "dev", "staging", "prod")
LOOPBACK = "127.0.0.1"
# What an NLB listener with an ACM certificate needs in the stack; nothing here calls AWS.
PLACEHOLDER_ACM_ARN = "arn:aws:acm:eu-west-1:000000000000:certificate/00000000-0000-0000-0000-000000000000"
UNLIMITED = RateLimits(per_caller_per_minute=1_000_000, per_server_per_minute=10_000_000)
START_SECONDS = 60.0
HAPROXY_START_SECONDS = 15.0
CALL_TIMEOUT_SECONDS = 30.0
SDK_TIMEOUT_SECONDS = 30.0
AUDIT_SECONDS = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The targets (issue: the MCP router's benchmark), on the 2-core machine.
TARGET_ADDED_P50_MS = 0.5
TARGET_ADDED_P99_MS = 2.0
TARGET_RATE_RATIO = 0.7

Mode = Literal["modern", "legacy"]
PathName = Literal["direct", "haproxy", "haproxy+hop", "haproxy+router", "haproxy+fastmcp"]
PATHS: tuple[PathName, ...] = ("direct", "haproxy", "haproxy+hop", "haproxy+router", "haproxy+fastmcp")
GATEWAY_PATHS: tuple[PathName, ...] = PATHS[1:]
Role = Literal["client", "server", "haproxy", "hop", "router", "fastmcp"]
PROXIES: tuple[Role, ...] = ("hop", "router", "fastmcp")
PROFILE_RATE = 250
PROFILE_FILE = "router-py-spy.txt"
PROFILE_TOP = 15
PEER_BACKENDS = ("shared", "fresh")
# Legacy clients open a session each on every path; the notes server keeps 1,000 notebooks at most.
MAX_CONCURRENCY = 64


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


@dataclass(frozen=True)
class Workload:
    """What one mode calls: on which server, which tool with which arguments, and what a good answer holds."""

    mode: Mode
    server: str
    tool: str
    arguments: dict[str, Any]
    expect: str
    """Text every answer's result must contain (so an empty or wrong answer never counts)."""
    seed: tuple[tuple[str, dict[str, Any]], ...] = ()
    """Calls made once per client before measuring (the legacy session's notes)."""

    @property
    def protocol(self) -> str:
        return MODERN_VERSION if self.mode == "modern" else "legacy"


WORKLOADS: dict[Mode, Workload] = {
    "modern": Workload(
        mode="modern",
        server="text",
        tool="word_count",
        arguments={
            "text": "The gateway checks the token, the route and the tool. Then it forwards the call."
        },
        expect='"words":15',
    ),
    "legacy": Workload(
        mode="legacy",
        server="notes",
        tool="search_notes",
        arguments={"query": "gateway"},
        expect="the gateway pins this session",
        seed=(
            ("add_note", {"text": "the gateway pins this session to one replica", "tags": ["bench"]}),
            ("add_note", {"text": "a note the search does not find", "tags": ["bench"]}),
        ),
    ),
}


@dataclass(frozen=True)
class Target:
    """Where a client reaches one server on one path, and the processes a call on it runs through."""

    path: PathName
    url: str
    pids: Mapping[Role, int]
    host_header: str | None = None
    """Host to send instead of the URL's (through HAProxy: the environment's public name)."""
    token: str | None = None


@dataclass(frozen=True)
class Template:
    """One tools/call exactly as the SDK client sent it; replayed with a fresh JSON-RPC id each time."""

    host: str
    port: int
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    """Every header the SDK sent, in order, without Content-Length (set per body)."""
    message: dict[str, Any]
    body: bytes
    """The body as the SDK sent it; `encode(message's id)` gives these bytes back."""

    def encode(self, request_id: int) -> bytes:
        return json.dumps(
            {**self.message, "id": request_id}, separators=(",", ":"), ensure_ascii=False
        ).encode()


def template_of(request: httpx2.Request) -> Template:
    url = urlsplit(str(request.url))
    if url.hostname is None:
        raise BenchError(f"the SDK sent tools/call to {request.url}, which names no host")
    target = url.path + (f"?{url.query}" if url.query else "")
    headers = tuple((k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length")
    message = json.loads(request.content)
    return Template(url.hostname, url.port or 80, request.method, target, headers, message, request.content)


def jsonrpc_answer(content_type: str, body: bytes) -> dict[str, Any]:
    """The JSON-RPC message of an answer: the body itself, or the last `data:` event of an SSE stream."""
    text = body.decode("utf-8")
    if content_type.startswith("text/event-stream"):
        events = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        if not events:
            raise BenchError("an SSE answer without a data event")
        text = events[-1]
    answer = json.loads(text)
    if not isinstance(answer, dict):
        raise BenchError(f"not a JSON-RPC message: {text[:200]}")
    return answer


class Caller:
    """One client: a keep-alive connection that replays its template and checks every answer."""

    def __init__(self, template: Template, workload: Workload) -> None:
        self.template = template
        self.workload = workload
        self.connection = self._connect()
        self.next_id = int(template.message.get("id", 0)) + 1
        self.reconnects = 0
        self.last_headers: dict[str, str] = {}

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            self.template.host, self.template.port, timeout=CALL_TIMEOUT_SECONDS
        )

    def call(self) -> float:
        """One tools/call; returns its latency in seconds, from sending to the last byte of the answer."""
        request_id = self.next_id
        self.next_id += 1
        body = self.template.encode(request_id)
        headers = dict(self.template.headers)
        headers["content-length"] = str(len(body))
        for attempt in range(2):
            started = time.perf_counter()
            try:
                self.connection.request(self.template.method, self.template.target, body, headers)
                response = self.connection.getresponse()
                content = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The peer closed an idle keep-alive connection (uvicorn after 5 s) before this request
                # reached it: open a new one and send again, timing only the attempt that is answered.
                self.connection.close()
                self.connection = self._connect()
                self.reconnects += 1
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - started
            self.last_headers = {k.lower(): v for k, v in response.getheaders()}
            self._check(response.status, response.getheader("content-type", ""), content, request_id)
            return elapsed
        raise AssertionError("unreachable")

    def _check(self, status: int, content_type: str, content: bytes, request_id: int) -> None:
        where = f"{self.workload.mode} {self.workload.server}/{self.workload.tool}"
        if status != 200:
            raise BenchError(f"{where}: HTTP {status}: {content[:300].decode(errors='replace')}")
        answer = jsonrpc_answer(content_type, content)
        result = answer.get("result")
        if answer.get("id") != request_id or not isinstance(result, dict):
            raise BenchError(f"{where}: not the answer to request {request_id}: {str(answer)[:300]}")
        if result.get("isError") is not False:
            raise BenchError(f"{where}: the tool failed: {str(result)[:300]}")
        if self.workload.expect not in json.dumps(result, separators=(",", ":")):
            raise BenchError(f"{where}: the answer lacks {self.workload.expect!r}: {str(result)[:300]}")

    def close(self) -> None:
        self.connection.close()


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in (0, 100]) of samples."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process pid so far (every thread), from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError as exc:
        raise BenchError(f"process {pid} is gone (reading its CPU time: {exc.strerror})") from None
    # The fields after the command name (which may hold spaces and parentheses) start at `state`
    # (field 3): utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Run:
    """Latencies of the calls of one kind of run on one path, and the wall time they took."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def calls(self) -> int:
        return len(self.latencies)

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000


@dataclass
class PathResult:
    """One mode on one path: sequential calls (latency), concurrent calls (throughput), CPU spent."""

    sequential: Run = field(default_factory=Run)
    concurrent: Run = field(default_factory=Run)
    cpu: dict[Role, float] = field(default_factory=dict)
    """CPU seconds each process of the path spent over the measured calls, sequential and concurrent."""
    reconnects: int = 0
    gateway_answered: bool = False
    """Whether the answers carried HAProxy's X-Request-ID (they must on the gateway paths only)."""

    @property
    def calls(self) -> int:
        return self.sequential.calls + self.concurrent.calls

    def cpu_ms_per_call(self, role: Role) -> float | None:
        if role not in self.cpu or not self.calls:
            return None
        return self.cpu[role] / self.calls * 1000


@contextlib.contextmanager
def cpu_charged(pids: Mapping[Role, int], result: PathResult) -> Iterator[None]:
    """Charge to result the CPU time each process of pids spends inside the block."""
    before = {role: cpu_seconds(pid) for role, pid in pids.items()}
    yield
    for role, pid in pids.items():
        result.cpu[role] = result.cpu.get(role, 0.0) + cpu_seconds(pid) - before[role]


def sequential(caller: Caller, calls: int, run: Run) -> None:
    started = time.perf_counter()
    for _ in range(calls):
        run.latencies.append(caller.call())
    run.seconds += time.perf_counter() - started


def concurrent(callers: Sequence[Caller], calls: int, run: Run, stop: threading.Event) -> None:
    """calls spread over callers, each on a thread of its own; they start together."""
    shares = [
        calls // len(callers) + (1 if index < calls % len(callers) else 0) for index in range(len(callers))
    ]
    start = threading.Barrier(len(callers) + 1)
    latencies: list[list[float]] = [[] for _ in callers]
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            start.wait()
            for _ in range(shares[index]):
                if stop.is_set():
                    return
                latencies[index].append(callers[index].call())
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(len(callers))]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        stop.set()
        raise
    run.seconds += time.perf_counter() - started
    if failures:
        raise failures[0]
    for share in latencies:
        run.latencies.extend(share)


@contextlib.asynccontextmanager
async def sdk_client(target: Target, workload: Workload) -> AsyncIterator[Template]:
    """Open a client with the mcp SDK (as `mcpfleet verify` does), seed it, make one tools/call and yield
    that request as a template. The client stays open, and a legacy session with it, until exit."""
    posts: list[httpx2.Request] = []

    async def record(request: httpx2.Request) -> None:
        if request.method == "POST":
            posts.append(request)

    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    if target.host_header:
        headers["Host"] = target.host_header
    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=SDK_TIMEOUT_SECONDS, event_hooks={"request": [record]}
        ) as http,
        Client(
            streamable_http_client(target.url, http_client=http), mode=workload.protocol, cache=None
        ) as client,
    ):
        where = f"{workload.mode} {workload.server} via {target.path} ({target.url})"
        for tool, arguments in workload.seed:
            seeded = await client.call_tool(tool, arguments)
            if seeded.is_error:
                raise BenchError(f"{where}: {tool} failed: {seeded.content}")
        result = await client.call_tool(workload.tool, workload.arguments)
        if result.is_error:
            raise BenchError(f"{where}: {workload.tool} failed: {result.content}")
        calls = [r for r in posts if json.loads(r.content or b"{}").get("method") == "tools/call"]
        if not calls:
            raise BenchError(f"{where}: the SDK sent no tools/call POST")
        yield template_of(calls[-1])


@contextlib.contextmanager
def held_open(portal: BlockingPortal, manager: AbstractAsyncContextManager[Template]) -> Iterator[Template]:
    """manager entered in the portal's event loop, and left as if nothing had happened: an interrupt of
    the main thread must not be thrown into the client (it would stop the portal's loop), and a client
    that fails to close after an earlier failure must not hide that failure."""
    wrapped = portal.wrap_async_context_manager(manager)
    template = wrapped.__enter__()
    failed = True
    try:
        yield template
        failed = False
    finally:
        if failed:
            with contextlib.suppress(Exception):
                wrapped.__exit__(None, None, None)
        else:
            wrapped.__exit__(None, None, None)


def load_fleet(env: str) -> Fleet:
    catalog = load_catalog(CATALOG)
    _, settings = load_stack_config(STACKS, env)
    fleet = resolve_fleet(catalog, env, settings, display_path(stack_file(STACKS, env)))  # type: ignore[arg-type]
    missing = sorted({w.server for w in WORKLOADS.values()} - {s.name for s in fleet.servers})
    if missing:
        raise BenchError(f"{', '.join(missing)} not enabled in {env} (examples/catalog)")
    return fleet


def gateway_variant(fleet: Fleet) -> Fleet:
    """fleet with no rate limit in reach of the benchmark, TLS ending at the load balancer, and only the
    workloads' servers (the others are not started)."""
    current = fleet.settings.gateway
    changes: dict[str, Any] = {"rate_limits": UNLIMITED}
    if terminates_tls(fleet.settings):
        changes.update(tls="acm", acm_certificate_arn=PLACEHOLDER_ACM_ARN, cluster_issuer=None)
    # Validated again as a stack file would be: the variant is one a stack could ship.
    changed = Gateway.model_validate(current.model_copy(update=changes).model_dump())
    settings = fleet.settings.model_copy(update={"gateway": changed})
    names = {w.server for w in WORKLOADS.values()}
    servers = tuple(s for s in fleet.servers if s.name in names)
    return dataclasses.replace(fleet, settings=settings, servers=servers)


def direct_backend(config: str, servers: Mapping[str, tuple[str, str]]) -> str:
    """config with its router pool (the last section) replaced by the servers themselves: HAProxy alone,
    each public path `/servers/<name>/...` rewritten to the server's own path. servers: name ->
    (address, path)."""
    head, found, tail = config.partition(f"\nbackend {ROUTER_BACKEND}\n")
    if not found or re.search(r"^\S", tail, re.MULTILINE):
        raise BenchError(f"the gateway configuration no longer ends with its `backend {ROUTER_BACKEND}`")
    lines = [
        f"backend {ROUTER_BACKEND}",
        "    # Benchmark: no router; each server reached straight, at its own path.",
    ]
    for name, (_, path) in sorted(servers.items()):
        lines.append(f"    http-request set-path {path} if {{ var(txn.server) -m str {name} }}")
    for name in sorted(servers):
        lines.append(f"    use-server {name} if {{ var(txn.server) -m str {name} }}")
    for name, (address, _) in sorted(servers.items()):
        lines.append(f"    server {name} {address}")
    return head + "\n" + "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    pid: int

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/mcp"


def start_servers(fleet: Fleet, children: list[process.Child], run_dir: Path) -> dict[str, Server]:
    """The workloads' servers, started as `mcpfleet dev` starts them (same command and settings)."""
    tools = Tools(npx=None, uvx=None, node=None)
    launches, skips = plan_launches(
        fleet,
        tools,
        os.environ,
        allocate_port=lambda: process.free_port(LOOPBACK),
        port_free=lambda port: not process.port_open(LOOPBACK, port),
    )
    if skips:
        raise BenchError("; ".join(f"{skip.server}: {skip.reason}" for skip in skips))
    started = []
    for launch in launches:
        if launch.path != "/mcp":
            raise BenchError(f"{launch.server} serves MCP on {launch.path}, the benchmark expects /mcp")
        child = process.start(
            launch.server,
            launch.argv,
            run_dir / "logs" / f"{launch.server}.log",
            env=child_environment(launch, os.environ, tools),
            cwd=REPO,
            port=launch.port,
        )
        children.append(child)
        started.append(child)
    servers = {}
    for child in started:
        assert child.port is not None
        wait_listening(child, child.port, START_SECONDS)
        servers[child.name] = Server(child.name, child.port, child.process.pid)
    return servers


def wait_listening(child: process.Child, port: int, seconds: float) -> None:
    try:
        process.wait_for_port(child, LOOPBACK, port, seconds)
    except process.ProcessFailed as exc:
        raise BenchError(str(exc)) from None


@dataclass(frozen=True)
class RunningGateway:
    """One HAProxy of the benchmark, and what a call through it runs through besides the server."""

    path: PathName
    fleet: Fleet
    port: int
    files: gateway.GatewayFiles
    pids: dict[Mode, dict[Role, int]]


@dataclass
class Stand:
    """Everything the benchmark started, by path."""

    servers: dict[str, Server]
    gateways: dict[PathName, RunningGateway]
    audit: Path
    """The router's audit records (its stdout)."""


def start_haproxy(
    haproxy: str,
    path: PathName,
    fleet: Fleet,
    routers: Sequence[Upstream],
    run_dir: Path,
    children: list[process.Child],
    rewrite: Callable[[str], str] | None = None,
    before_start: Callable[[gateway.GatewayFiles], dict[Mode, dict[Role, int]]] = lambda files: {},
) -> RunningGateway:
    """HAProxy with fleet's configuration forwarding to routers (rewritten by rewrite, if given), on free
    loopback ports; before_start runs once its files are written (the proxy behind it needs its issuer
    key) and names the processes behind it."""
    port, metrics_port = free_ports(2)
    files = gateway.prepare(fleet, routers, port, run_dir / path, os.environ, metrics_port)
    if rewrite is not None:
        files.config.write_text(rewrite(files.config.read_text(encoding="utf-8")), encoding="utf-8")
    behind = before_start(files)
    check = subprocess.run(
        [haproxy, "-c", "-f", str(files.config)], env=files.env, capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        raise BenchError(f"{path}: HAProxy refused its configuration:\n{check.stdout}{check.stderr}")
    child = process.start(
        f"haproxy-{path}",
        [haproxy, "-f", str(files.config), "-db"],
        run_dir / "logs" / f"{path}.log",
        env=files.env,
    )
    children.append(child)
    wait_listening(child, port, HAPROXY_START_SECONDS)
    pids = {mode: {**roles, "haproxy": child.process.pid} for mode, roles in behind.items()}
    for mode in WORKLOADS:
        pids.setdefault(mode, {"haproxy": child.process.pid})
    return RunningGateway(path, fleet, port, files, pids)


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = process.free_port(LOOPBACK)
        if port not in ports:
            ports.append(port)
    return ports


def start_router(
    fleet: Fleet,
    servers: Mapping[str, Server],
    files: gateway.GatewayFiles,
    ports: Sequence[int],
    run_dir: Path,
    children: list[process.Child],
) -> tuple[process.Child, Path]:
    """The MCP router as `mcpfleet dev` runs it; ready once healthy. Returns it and its audit file."""
    port, metrics_port = ports
    upstreams = {name: [server.address] for name, server in servers.items()}
    router_files = router.prepare(fleet, upstreams, files.issuer_key, run_dir, port, metrics_port)
    audit = run_dir / "logs" / router.AUDIT_FILE
    child = process.start(
        "router",
        router_files.argv,
        run_dir / "logs" / router.LOG_FILE,
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
    return child, audit


def start_peers(
    fleet: Fleet,
    servers: Mapping[str, Server],
    files: gateway.GatewayFiles,
    ports: Mapping[Mode, int],
    backend: str,
    run_dir: Path,
    children: list[process.Child],
) -> dict[Mode, process.Child]:
    """fastmcp's proxy (scripts/bench_peer.py) in front of each workload's server."""
    auth = fleet.settings.gateway.auth
    peers = {}
    for mode, workload in WORKLOADS.items():
        argv = [sys.executable, "-m", "scripts.bench_peer", "--upstream", servers[workload.server].url]
        argv += ["--host", LOOPBACK, "--port", str(ports[mode]), "--mode", mode, "--backend", backend]
        argv += ["--jwt-key", str(files.issuer_key), "--issuer", auth.issuer]
        argv += ["--audience", fleet.audience(workload.server), "--algorithm", auth.algorithm]
        argv += ["--allowed-host", fleet.settings.domain]
        child = process.start(
            f"fastmcp-{mode}",
            argv,
            run_dir / "logs" / f"fastmcp-{mode}.log",
            env=base_environment(os.environ),
            cwd=REPO,
            port=ports[mode],
        )
        children.append(child)
        peers[mode] = child
    for child in peers.values():
        assert child.port is not None
        wait_listening(child, child.port, START_SECONDS)
    return peers


def start_hop(
    fleet: Fleet, servers: Mapping[str, Server], port: int, run_dir: Path, children: list[process.Child]
) -> process.Child:
    """scripts/bench_hop.py in front of every server, at their public paths; ready once healthy."""
    argv = [sys.executable, "-m", "scripts.bench_hop", "--host", LOOPBACK, "--port", str(port)]
    for fleet_server in fleet.servers:
        argv += ["--route", f"{public_path(fleet_server)}={servers[fleet_server.name].url}"]
    child = process.start(
        "hop", argv, run_dir / "logs" / "hop.log", env=base_environment(os.environ), cwd=REPO, port=port
    )
    children.append(child)
    wait_listening(child, port, START_SECONDS)
    return child


def start_stand(
    haproxy: str, fleet: Fleet, peer_backend: str, run_dir: Path, children: list[process.Child]
) -> Stand:
    servers = start_servers(fleet, children, run_dir)
    gateways: dict[PathName, RunningGateway] = {}

    # HAProxy alone: its router pool replaced by the servers.
    straight = {name: (server.address, "/mcp") for name, server in servers.items()}
    gateways["haproxy"] = start_haproxy(
        haproxy,
        "haproxy",
        fleet,
        [Upstream(s.address, s.port) for s in servers.values()],
        run_dir,
        children,
        rewrite=lambda config: direct_backend(config, straight),
    )

    # HAProxy and the bare Python hop, where the router would be.
    hop_port = free_ports(1)[0]

    def with_hop(files: gateway.GatewayFiles) -> dict[Mode, dict[Role, int]]:
        child = start_hop(fleet, servers, hop_port, run_dir, children)
        return {mode: {"hop": child.process.pid} for mode in WORKLOADS}

    gateways["haproxy+hop"] = start_haproxy(
        haproxy,
        "haproxy+hop",
        fleet,
        [Upstream(f"{LOOPBACK}:{hop_port}", hop_port)],
        run_dir,
        children,
        before_start=with_hop,
    )

    # HAProxy and the router, as rendered for the environment (one router replica, at a fixed address).
    router_ports = free_ports(2)
    audit: list[Path] = []

    def with_router(files: gateway.GatewayFiles) -> dict[Mode, dict[Role, int]]:
        child, audit_file = start_router(fleet, servers, files, router_ports, run_dir, children)
        audit.append(audit_file)
        return {mode: {"router": child.process.pid} for mode in WORKLOADS}

    gateways["haproxy+router"] = start_haproxy(
        haproxy,
        "haproxy+router",
        fleet,
        [Upstream(f"{LOOPBACK}:{router_ports[0]}", router_ports[1])],
        run_dir,
        children,
        before_start=with_router,
    )

    # HAProxy and the peer: the same configuration, fastmcp's proxies where the router was.
    peer_ports: dict[Mode, int] = dict(zip(WORKLOADS, free_ports(len(WORKLOADS)), strict=True))
    peers = {WORKLOADS[mode].server: (f"{LOOPBACK}:{port}", "/mcp") for mode, port in peer_ports.items()}

    def with_peers(files: gateway.GatewayFiles) -> dict[Mode, dict[Role, int]]:
        started = start_peers(fleet, servers, files, peer_ports, peer_backend, run_dir, children)
        return {mode: {"fastmcp": child.process.pid} for mode, child in started.items()}

    gateways["haproxy+fastmcp"] = start_haproxy(
        haproxy,
        "haproxy+fastmcp",
        fleet,
        [Upstream(address) for address, _ in peers.values()],
        run_dir,
        children,
        rewrite=lambda config: direct_backend(config, peers),
        before_start=with_peers,
    )
    return Stand(servers, gateways, audit[0])


def targets_for(workload: Workload, stand: Stand) -> list[Target]:
    server = stand.servers[workload.server]
    # The benchmark's own process is the clients: its CPU counts in the chain's (all its threads).
    client = os.getpid()
    found = [Target("direct", server.url, {"client": client, "server": server.pid})]
    for path in GATEWAY_PATHS:
        running = stand.gateways[path]
        fleet_server = next(s for s in running.fleet.servers if s.name == workload.server)
        url = gateway.endpoint(running.fleet, fleet_server, running.port)
        tokens = json.loads(running.files.tokens.read_text(encoding="utf-8"))
        pids: dict[Role, int] = {"client": client, "server": server.pid, **running.pids[workload.mode]}
        found.append(Target(path, url, pids, running.fleet.settings.domain, tokens[workload.server]))
    return found


@dataclass(frozen=True)
class Settings:
    calls: int
    concurrency: int
    warmup: int
    rounds: int


def chunks(total: int, rounds: int) -> list[int]:
    return [total // rounds + (1 if index < total % rounds else 0) for index in range(rounds)]


def measure(
    portal: BlockingPortal,
    workload: Workload,
    targets: Sequence[Target],
    settings: Settings,
    stop: threading.Event,
    echo: Callable[[str], None],
) -> dict[PathName, PathResult]:
    """Open every client, warm up, then measure the paths in turn, round after round: sequential calls on
    one connection, then calls from `concurrency` clients at once. Legacy clients get a session each."""
    results: dict[PathName, PathResult] = {target.path: PathResult() for target in targets}
    by_path = {target.path: target for target in targets}
    sessions = settings.concurrency + 1 if workload.mode == "legacy" else 1
    with contextlib.ExitStack() as stack:
        callers: dict[PathName, list[Caller]] = {}
        for target in targets:
            templates = [
                stack.enter_context(held_open(portal, sdk_client(target, workload))) for _ in range(sessions)
            ]
            if len(templates) == 1:
                templates *= settings.concurrency + 1
            path_callers = [Caller(template, workload) for template in templates]
            for caller in path_callers:
                stack.callback(caller.close)
            callers[target.path] = path_callers
            # Warm-up: connections opened, every code path and cache of every process hot.
            for caller in path_callers:
                for _ in range(max(1, settings.warmup // len(path_callers))):
                    caller.call()
            results[target.path].gateway_answered = "x-request-id" in path_callers[0].last_headers
        order = [target.path for target in targets]
        for index, share in enumerate(chunks(settings.calls, settings.rounds)):
            # Each round starts with another path, so none is always measured first.
            rotated = order[index % len(order) :] + order[: index % len(order)]
            for path in rotated:
                refresh(callers[path][:1])
                with cpu_charged(by_path[path].pids, results[path]):
                    sequential(callers[path][0], share, results[path].sequential)
            for path in rotated:
                refresh(callers[path][1:])
                with cpu_charged(by_path[path].pids, results[path]):
                    concurrent(callers[path][1:], share, results[path].concurrent, stop)
            echo(f"  {workload.mode}: round {index + 1} of {settings.rounds} done")
        for path, path_callers in callers.items():
            results[path].reconnects = sum(caller.reconnects for caller in path_callers)
    return results


def refresh(callers: Sequence[Caller]) -> None:
    """One unmeasured call per caller before its turn: while the other paths took theirs, servers closed
    idle connections (uvicorn after 5 s) on this path's every hop; reopening them is not what is measured,
    on any path."""
    for caller in callers:
        caller.call()


def audited_calls(audit: Path, workload: Workload) -> int:
    """The router's audit records of workload's calls that the server answered."""
    count = 0
    for line in audit.read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            # Full records only: a forward record (written before the call is sent) has no outcome, and
            # a listing record (the router's own request) no tool.
            if (record["server"], record["method"], record.get("tool"), record.get("outcome")) == (
                workload.server,
                "tools/call",
                workload.tool,
                "ok",
            ):
                count += 1
    return count


def check_router_saw(audit: Path, workload: Workload, calls: int) -> None:
    """Every call through the router has its audit record (written as the answer ends: wait a moment)."""
    deadline = time.monotonic() + AUDIT_SECONDS
    while (seen := audited_calls(audit, workload)) < calls:
        if time.monotonic() > deadline:
            raise BenchError(
                f"{workload.mode}: {calls} calls through the router, only {seen} audit records of them"
            )
        time.sleep(0.1)


def ratio(value: float, base: float) -> float:
    return value / base if base > 0 else math.inf


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render_table(results: Mapping[Mode, Mapping[PathName, PathResult]], concurrency: int) -> list[str]:
    header = (
        f"{'mode':<7} {'path':<16} {'calls/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'calls/s x':>9}"
        f" {'p50 x':>6} {'p99 x':>6} {'+p50 ms':>8} {'+p99 ms':>8}"
        f" {'server cpu':>10} {'haproxy cpu':>11} {'proxy cpu':>9} {'proxy cpu x':>11} {'all cpu':>7}"
    )
    lines = [header, "-" * len(header)]
    for mode, by_path in results.items():
        direct = by_path["direct"]
        base_cpu = direct.cpu_ms_per_call("server")
        for path, result in by_path.items():
            seq, con = result.sequential, result.concurrent
            row = f"{mode:<7} {path:<16} {con.calls_per_second:>8.0f} {seq.p50_ms:>7.3f} {seq.p99_ms:>7.3f}"
            proxy = next((v for r in PROXIES if (v := result.cpu_ms_per_call(r)) is not None), None)
            if path == "direct":
                row += f" {'':>9} {'':>6} {'':>6} {'':>8} {'':>8}"
            else:
                row += (
                    f" {ratio(con.calls_per_second, direct.concurrent.calls_per_second):>8.2f}x"
                    f" {ratio(seq.p50_ms, direct.sequential.p50_ms):>5.2f}x"
                    f" {ratio(seq.p99_ms, direct.sequential.p99_ms):>5.2f}x"
                    f" {seq.p50_ms - direct.sequential.p50_ms:>+8.3f}"
                    f" {seq.p99_ms - direct.sequential.p99_ms:>+8.3f}"
                )
            row += (
                f" {_ms(result.cpu_ms_per_call('server')):>10} {_ms(result.cpu_ms_per_call('haproxy')):>11}"
            )
            row += f" {_ms(proxy):>9}"
            row += f" {ratio(proxy, base_cpu):>10.2f}x" if proxy is not None and base_cpu else f" {'':>11}"
            row += f" {sum(result.cpu.values()) / result.calls * 1000 if result.calls else 0.0:>7.3f}"
            lines.append(row)
    lines += [
        f"calls/s: {concurrency} clients at once; p50/p99: sequential calls on one keep-alive connection;",
        "x: the path / direct; +ms: the path's latency minus direct's; cpu: ms of CPU (user+system) per",
        "call; proxy: the hop, the router or fastmcp; proxy cpu x: its CPU per call / the server's on",
        "direct; all cpu: every process of the path, the benchmark's clients included (it bounds calls/s)",
    ]
    return lines


def verdicts(results: Mapping[Mode, Mapping[PathName, PathResult]]) -> list[str]:
    """Each target, met or not, with the figures it was judged on."""
    lines = []
    for mode, by_path in results.items():
        direct, alone = by_path["direct"], by_path["haproxy"]
        routed, peer = by_path["haproxy+router"], by_path["haproxy+fastmcp"]
        added_p50 = routed.sequential.p50_ms - alone.sequential.p50_ms
        added_p99 = routed.sequential.p99_ms - alone.sequential.p99_ms
        rate = ratio(routed.concurrent.calls_per_second, direct.concurrent.calls_per_second)
        faster = (
            routed.sequential.p50_ms < peer.sequential.p50_ms
            and routed.sequential.p99_ms < peer.sequential.p99_ms
            and routed.concurrent.calls_per_second > peer.concurrent.calls_per_second
        )
        checks = [
            (
                f"router adds {added_p50:+.3f} ms at p50 over HAProxy alone (<= {TARGET_ADDED_P50_MS})",
                added_p50 <= TARGET_ADDED_P50_MS,
            ),
            (
                f"router adds {added_p99:+.3f} ms at p99 over HAProxy alone (<= {TARGET_ADDED_P99_MS})",
                added_p99 <= TARGET_ADDED_P99_MS,
            ),
            (
                f"calls/s through HAProxy + router {rate:.2f}x direct (>= {TARGET_RATE_RATIO})",
                rate >= TARGET_RATE_RATIO,
            ),
            (
                "faster than fastmcp's proxy at p50, p99 and calls/s"
                f" ({routed.sequential.p50_ms:.3f}/{peer.sequential.p50_ms:.3f} ms,"
                f" {routed.sequential.p99_ms:.3f}/{peer.sequential.p99_ms:.3f} ms,"
                f" {routed.concurrent.calls_per_second:.0f}/{peer.concurrent.calls_per_second:.0f} calls/s)",
                faster,
            ),
        ]
        for text, met in checks:
            lines.append(f"{mode}: {text}: {'met' if met else 'NOT met'}")
        hop = by_path["haproxy+hop"]
        own_cpu = (routed.cpu_ms_per_call("router") or 0.0) - (hop.cpu_ms_per_call("hop") or 0.0)
        hop_p50 = hop.sequential.p50_ms - alone.sequential.p50_ms
        lines.append(
            f"{mode}: a bare Python hop alone adds {hop_p50:+.3f} ms at"
            f" p50 over HAProxy alone; the router's own work adds"
            f" {routed.sequential.p50_ms - hop.sequential.p50_ms:+.3f} ms at p50 and {own_cpu:+.3f} ms of CPU"
            " per call over that hop"
        )
    return lines


@contextlib.contextmanager
def profiled(pid: int, directory: Path | None, echo: Callable[[str], None]) -> Iterator[None]:
    """py-spy sampling process pid (Python stacks, without pausing it) for the block, if directory is
    given; then the hottest functions, by the time they spend themselves and with what they call."""
    if directory is None:
        yield
        return
    beside = Path(sys.executable).parent / "py-spy"
    binary = str(beside) if beside.exists() else shutil.which("py-spy")
    if binary is None:
        raise BenchError("py-spy not found (pip install py-spy)")
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / PROFILE_FILE
    command = [binary, "record", "--pid", str(pid), "--nonblocking", "--rate", str(PROFILE_RATE)]
    command += ["--format", "raw", "--output", str(output)]
    with (directory / "py-spy.log").open("wb") as log:
        spy = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
    if not output.exists():
        raise BenchError(f"py-spy wrote no profile (see {directory / 'py-spy.log'})")
    for line in profile_summary(output.read_text(encoding="utf-8")):
        echo(line)
    echo(f"  raw stacks (flame graph input): {output}")


def _frame(frame: str) -> str:
    """`function (file:line)` as `function (package/module.py)`: the line dropped, and the path from
    where its package starts (site-packages, the standard library, this repository)."""
    name, _, where = frame.rpartition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    path = _PACKAGE_ROOT.sub("", path.removeprefix(f"{REPO}/"))
    return f"{name} ({path})" if name else frame


_PACKAGE_ROOT = re.compile(r"^.*/(site-packages|dist-packages|python3\.[0-9]+)/")


def profile_summary(raw: str, top: int = PROFILE_TOP) -> list[str]:
    """py-spy's raw output (`frame;frame;... count` per line) as the functions that take the most samples:
    by the time they spend themselves (self) and with everything they call (total)."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(frame) for frame in stack.split(";")]
        samples += int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for name in set(frames):
            total[name] = total.get(name, 0) + int(count)
    if not samples:
        return ["  profile: no samples"]
    lines = [f"  router profile (py-spy, {samples} samples of the router while busy): self% total% function"]
    for name, spent in sorted(own.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {spent / samples:6.1%} {total[name] / samples:6.1%}  {name}")
    return lines


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def haproxy_version(binary: str) -> str:
    output = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stdout
    return output.splitlines()[0] if output else "haproxy (version unknown)"


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_gateway",
        description=(__doc__ or "").splitlines()[0],
        epilog="Prints figures, never judges them by its exit status. Stops all it started, Ctrl-C included.",
    )
    parser.add_argument(
        "--env",
        default="dev",
        choices=ENVIRONMENTS,
        help="Stack whose gateway and router configuration runs (default: %(default)s).",
    )
    parser.add_argument(
        "--calls",
        type=positive,
        default=1500,
        help="Measured calls per mode and path, for each kind of run (default: %(default)s).",
    )
    parser.add_argument(
        "--concurrency",
        type=positive,
        default=8,
        help="Clients at once in the throughput run (default: %(default)s).",
    )
    parser.add_argument(
        "--warmup",
        type=non_negative,
        default=200,
        help="Unmeasured calls per mode and path first, spread over its clients (default: %(default)s).",
    )
    parser.add_argument(
        "--rounds",
        type=positive,
        default=10,
        help="Turns the paths take, each a share of the calls (default: %(default)s).",
    )
    parser.add_argument(
        "--peer-backend",
        choices=PEER_BACKENDS,
        default="shared",
        help="fastmcp's backend client for modern clients: one shared (its fastest) or one per request"
        " (its default) (default: %(default)s).",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="Sample the router with py-spy while it is measured; print its hottest functions and write"
        f" the raw stacks to DIR/{PROFILE_FILE}.",
    )
    args = parser.parse_args(argv)
    if args.rounds > args.calls:
        parser.error(f"--rounds ({args.rounds}) cannot exceed --calls ({args.calls})")
    if args.concurrency > MAX_CONCURRENCY:
        parser.error(f"--concurrency ({args.concurrency}) cannot exceed {MAX_CONCURRENCY}")
    return args


@contextlib.contextmanager
def interrupted_on_sigterm() -> Iterator[None]:
    """SIGTERM takes the Ctrl-C path, so a killed benchmark stops its processes too."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def benchmark(
    args: argparse.Namespace, run_dir: Path, echo: Callable[[str], None]
) -> dict[Mode, dict[PathName, PathResult]]:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        raise BenchError("haproxy not found on PATH (Debian: apt-get install haproxy)")
    fleet = gateway_variant(load_fleet(args.env))
    settings = Settings(args.calls, args.concurrency, args.warmup, args.rounds)
    auth = fleet.settings.gateway.auth
    echo(
        f"gateway benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC:"
        f" environment {args.env} (examples/catalog), {haproxy_version(haproxy)}, {os.cpu_count()} CPUs"
    )
    for mode, workload in WORKLOADS.items():
        era = "2026-07-28, stateless" if mode == "modern" else "2025-11-25, one session per client"
        echo(f"  {mode} ({era}): {workload.server}/{workload.tool}")
    echo(
        f"  {settings.calls} sequential calls and {settings.calls} calls from {settings.concurrency} clients"
        f" per mode and path, after {settings.warmup} warm-up calls, in {settings.rounds} rounds"
    )
    echo(
        f"  tokens: {auth.algorithm}, checked by HAProxy on every gateway path, again by the router and by"
        f" fastmcp; fastmcp's modern backend: {args.peer_backend}"
    )
    echo(f"  load average before: {load_average()}")
    stop = threading.Event()
    children: list[process.Child] = []
    try:
        stand = start_stand(haproxy, fleet, args.peer_backend, run_dir, children)
        results: dict[Mode, dict[PathName, PathResult]] = {}
        router_pid = stand.gateways["haproxy+router"].pids["modern"]["router"]
        with start_blocking_portal() as portal, profiled(router_pid, args.profile, echo):
            for mode, workload in WORKLOADS.items():
                before = audited_calls(stand.audit, workload)
                results[mode] = measure(portal, workload, targets_for(workload, stand), settings, stop, echo)
                # Every call through the router path, the warm-up and the SDK's own included, is audited.
                routed = results[mode]["haproxy+router"].calls
                check_router_saw(stand.audit, workload, before + routed)
        for mode, by_path in results.items():
            for path, result in by_path.items():
                if result.gateway_answered != (path != "direct"):
                    raise BenchError(
                        f"{mode} {path}: answered {'by' if result.gateway_answered else 'without'} HAProxy,"
                        " against the path's purpose"
                    )
        echo(f"  load average after: {load_average()}")
        return results
    finally:
        stop.set()
        for child in reversed(children):
            process.stop(child)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with interrupted_on_sigterm(), tempfile.TemporaryDirectory(prefix="bench-gateway-") as scratch:
        try:
            results = benchmark(args, Path(scratch), lambda line: print(line, flush=True))
        except KeyboardInterrupt:
            print("interrupted: every process started was stopped", file=sys.stderr)
            return 130
        except (BenchError, InvalidInput) as exc:
            print(f"bench_gateway: {exc}", file=sys.stderr)
            return 1
    print()
    for line in render_table(results, args.concurrency):
        print(line)
    reconnects = {
        f"{m} {p}": r.reconnects for m, by in results.items() for p, r in by.items() if r.reconnects
    }
    if reconnects:
        print(f"reconnected idle connections (not timed): {reconnects}")
    for line in verdicts(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
