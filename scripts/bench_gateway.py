"""Benchmark the gateway: tools/call through HAProxy against straight to the server, modern and legacy.

    python -m scripts.bench_gateway [--env dev] [--calls 1500] [--concurrency 8] [--warmup 200] [--rounds 5]

Two reference servers of examples/catalog start as `mcpfleet dev` starts them: text (stateless) for
modern clients (2026-07-28: no session, `mcp-method`/`mcp-name` headers) and notes (stateful) for legacy
clients (2025-11-25: `initialize`, then `mcp-session-id` on every request, a session seeded with notes
that each call searches). In front of them runs the environment's own HAProxy configuration, written by
the real renderer through `mcpfleet.dev.gateway.prepare`, with a throwaway issuer and one token per
server, so every check a call meets in the cluster (bearer token signature, issuer, audience, expiry,
route, method and tool from headers or body, access rules, rate counters, the access log) runs here too.

Paths, for each mode:
- direct: the server itself, plain HTTP on its loopback port, no token (a caller inside the cluster);
- gateway: the configuration the environment renders when TLS ends at the load balancer (`tls: acm`):
  the same transport as direct, so the ratio is the gateway's own cost;
- gateway+tls: the environment's configuration as its stack file gives it, when HAProxy terminates TLS
  there (cert-manager, self-signed): TLS 1.2+ with a self-signed certificate made for this run, on a
  keep-alive connection (the handshake happens once, during the warm-up).

Each configuration keeps the stack's checks but raises the rate limits to the most a stack may set, so
that no call is refused (the counters are still tracked and compared on every request). The two
gateways run side by side on loopback addresses of their own (the pod address, `MCP_GATEWAY_ADDRESS`),
so the three paths are measured in turn, round after round, and drift on a busy machine hits them alike.

How calls are sent: each client is first opened with the mcp SDK's own `Client` (as `mcpfleet verify`
opens them), which runs the handshake, seeds the legacy session and makes one tools/call; that request's
exact method, path, headers (protocol version, `mcp-method`, `mcp-name`, session id, bearer token) and
body are captured and then replayed, with a fresh JSON-RPC id each time, over one keep-alive
`http.client` connection per client: the SDK client's own work (about 2 ms a call here, several times
what HAProxy adds) would otherwise shrink every ratio towards 1. Callers through the gateway send the
environment's public name as Host, as its real clients do; direct callers send the server's loopback
address. Every answer is checked (status, JSON-RPC id, a result that is no tool error, the expected
content) before it counts.

Printed: calls/s from `--concurrency` clients at once, p50 and p99 latency of sequential calls on one
connection, each path's ratios to direct, and whether p50 through the gateway is at most 1.5x direct.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import math
import os
import shutil
import signal
import ssl
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

from components.manifests.gateway import ADDRESS_ENV, METRICS_PORT, PEER_PORT, terminates_tls
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.dev import gateway, process
from mcpfleet.dev.launch import Tools, child_environment, plan_launches
from mcpfleet.errors import InvalidInput, display_path
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.model import RateLimits
from mcpfleet.stacks.loader import load_stack_config, stack_file
from mcpfleet.stacks.models import Gateway
from mcpfleet.verify.listing import MODERN_VERSION

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "examples" / "catalog"
STACKS = REPO / "stacks"
ENVIRONMENTS = ("local", "dev", "staging", "prod")
LOOPBACK = "127.0.0.1"
# Pod addresses for the gateways: any of 127.0.0.0/8 reaches loopback on Linux. Away from 127.0.0.1
# (`mcpfleet dev`, whose gateway holds the same metrics and peer ports) and from the low addresses the
# gateway tests use, so a benchmark and a test run can share the machine.
GATEWAY_ADDRESSES = tuple(f"127.0.0.{host}" for host in range(200, 240))
# What an NLB listener with an ACM certificate needs in the stack; nothing here calls AWS.
PLACEHOLDER_ACM_ARN = "arn:aws:acm:eu-west-1:000000000000:certificate/00000000-0000-0000-0000-000000000000"
UNLIMITED = RateLimits(per_caller_per_minute=1_000_000, per_server_per_minute=10_000_000)
TARGET_P50_RATIO = 1.5
START_SECONDS = 60.0
HAPROXY_START_SECONDS = 15.0
CALL_TIMEOUT_SECONDS = 30.0
SDK_TIMEOUT_SECONDS = 30.0

Mode = Literal["modern", "legacy"]
PathName = Literal["direct", "gateway", "gateway+tls"]
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
    """Where a client reaches one server on one path."""

    path: PathName
    url: str
    host_header: str | None = None
    """Host to send instead of the URL's (through the gateway: the environment's public name)."""
    token: str | None = None
    certificate: Path | None = None
    """The gateway's self-signed certificate, trusted for this run (gateway+tls only)."""

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.certificate is None:
            return None
        context = ssl.create_default_context(cafile=str(self.certificate))
        # The certificate itself is the only trust anchor; it names 127.0.0.1 and the domain, not the
        # other loopback address the gateway listens on here.
        context.check_hostname = False
        return context


@dataclass(frozen=True)
class Template:
    """One tools/call exactly as the SDK client sent it; replayed with a fresh JSON-RPC id each time."""

    host: str
    port: int
    tls: ssl.SSLContext | None
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


def template_of(request: httpx2.Request, tls: ssl.SSLContext | None) -> Template:
    url = urlsplit(str(request.url))
    if url.hostname is None:
        raise BenchError(f"the SDK sent tools/call to {request.url}, which names no host")
    default_port = 443 if url.scheme == "https" else 80
    target = url.path + (f"?{url.query}" if url.query else "")
    headers = tuple((k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length")
    message = json.loads(request.content)
    return Template(
        url.hostname, url.port or default_port, tls, request.method, target, headers, message, request.content
    )


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
        t = self.template
        if t.tls is not None:
            return http.client.HTTPSConnection(t.host, t.port, timeout=CALL_TIMEOUT_SECONDS, context=t.tls)
        return http.client.HTTPConnection(t.host, t.port, timeout=CALL_TIMEOUT_SECONDS)

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
    """One mode on one path: sequential calls (latency) and concurrent calls (throughput)."""

    sequential: Run = field(default_factory=Run)
    concurrent: Run = field(default_factory=Run)
    reconnects: int = 0
    gateway_answered: bool = False
    """Whether the answers carried the gateway's X-Request-ID (they must on the gateway paths only)."""


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
    context = target.ssl_context()
    async with (
        httpx2.AsyncClient(
            headers=headers,
            timeout=SDK_TIMEOUT_SECONDS,
            verify=context if context is not None else True,
            event_hooks={"request": [record]},
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
        yield template_of(calls[-1], context)


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


@dataclass
class Servers:
    """The started servers, by name: their loopback port."""

    ports: dict[str, int]


def load_fleet(env: str) -> Fleet:
    catalog = load_catalog(CATALOG)
    _, settings = load_stack_config(STACKS, env)
    fleet = resolve_fleet(catalog, env, settings, display_path(stack_file(STACKS, env)))  # type: ignore[arg-type]
    missing = sorted({w.server for w in WORKLOADS.values()} - {s.name for s in fleet.servers})
    if missing:
        raise BenchError(f"{', '.join(missing)} not enabled in {env} (examples/catalog)")
    return fleet


def gateway_variant(fleet: Fleet, tls: bool) -> Fleet:
    """fleet with no rate limit in reach of the benchmark; with TLS ending at the load balancer unless tls."""
    current = fleet.settings.gateway
    changes: dict[str, Any] = {"rate_limits": UNLIMITED}
    if not tls and terminates_tls(fleet.settings):
        changes.update(tls="acm", acm_certificate_arn=PLACEHOLDER_ACM_ARN, cluster_issuer=None)
    # Validated again as a stack file would be: the variant is one a stack could ship.
    changed = Gateway.model_validate(current.model_copy(update=changes).model_dump())
    settings = fleet.settings.model_copy(update={"gateway": changed})
    return dataclasses.replace(fleet, settings=settings)


def start_servers(fleet: Fleet, children: list[process.Child], run_dir: Path) -> Servers:
    """The workloads' servers, started as `mcpfleet dev` starts them (same command and settings)."""
    names = {w.server for w in WORKLOADS.values()}
    subset = dataclasses.replace(fleet, servers=tuple(s for s in fleet.servers if s.name in names))
    tools = Tools(npx=None, uvx=None, node=None)
    launches, skips = plan_launches(
        subset,
        tools,
        os.environ,
        allocate_port=lambda: process.free_port(LOOPBACK),
        port_free=lambda port: not process.port_open(LOOPBACK, port),
    )
    if skips:
        raise BenchError("; ".join(f"{skip.server}: {skip.reason}" for skip in skips))
    started = []
    for launch in launches:
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
    for child in started:
        assert child.port is not None
        try:
            process.wait_for_port(child, LOOPBACK, child.port, START_SECONDS)
        except process.ProcessFailed as exc:
            raise BenchError(str(exc)) from None
    return Servers({child.name: child.port for child in started if child.port is not None})


def free_gateway_address(taken: set[str]) -> str:
    """A loopback address whose metrics and peer ports are free (the configuration fixes both)."""
    for address in GATEWAY_ADDRESSES:
        if address in taken:
            continue
        if not any(process.port_open(address, port) for port in (METRICS_PORT, PEER_PORT)):
            return address
    raise BenchError(f"no loopback address among {GATEWAY_ADDRESSES[0]}..{GATEWAY_ADDRESSES[-1]} is free")


@dataclass(frozen=True)
class RunningGateway:
    path: PathName
    fleet: Fleet
    address: str
    port: int
    files: gateway.GatewayFiles


def start_gateway(
    haproxy: str,
    path: PathName,
    fleet: Fleet,
    servers: Servers,
    run_dir: Path,
    children: list[process.Child],
    taken: set[str],
) -> RunningGateway:
    address = free_gateway_address(taken)
    taken.add(address)
    port = process.free_port(address)
    upstreams = {name: [f"{LOOPBACK}:{server_port}"] for name, server_port in servers.ports.items()}
    files = gateway.prepare(fleet, upstreams, port, run_dir / path, os.environ)
    env = {**files.env, ADDRESS_ENV: address}
    child = process.start(
        path, [haproxy, "-f", str(files.config), "-db"], run_dir / "logs" / f"{path}.log", env=env
    )
    children.append(child)
    try:
        process.wait_for_port(child, address, port, HAPROXY_START_SECONDS)
    except process.ProcessFailed as exc:
        raise BenchError(str(exc)) from None
    return RunningGateway(path, fleet, address, port, files)


def targets_for(workload: Workload, servers: Servers, gateways: Sequence[RunningGateway]) -> list[Target]:
    found = [Target("direct", f"http://{LOOPBACK}:{servers.ports[workload.server]}/mcp")]
    for running in gateways:
        server = next(s for s in running.fleet.servers if s.name == workload.server)
        url = gateway.endpoint(running.fleet, server, running.port).replace(LOOPBACK, running.address, 1)
        tokens = json.loads(running.files.tokens.read_text(encoding="utf-8"))
        found.append(
            Target(
                running.path,
                url,
                running.fleet.settings.domain,
                tokens[workload.server],
                running.files.certificate,
            )
        )
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
            # Warm-up: connections (and TLS) opened, every code path and cache of both ends hot.
            for caller in path_callers:
                for _ in range(max(1, settings.warmup // len(path_callers))):
                    caller.call()
            results[target.path].gateway_answered = "x-request-id" in path_callers[0].last_headers
        order = [target.path for target in targets]
        for index, share in enumerate(chunks(settings.calls, settings.rounds)):
            # Each round starts with another path, so none is always measured first.
            rotated = order[index % len(order) :] + order[: index % len(order)]
            for path in rotated:
                sequential(callers[path][0], share, results[path].sequential)
            for path in rotated:
                concurrent(callers[path][1:], share, results[path].concurrent, stop)
            echo(f"  {workload.mode}: round {index + 1} of {settings.rounds} done")
        for path, path_callers in callers.items():
            results[path].reconnects = sum(caller.reconnects for caller in path_callers)
    return results


def ratio(value: float, base: float) -> float:
    return value / base if base > 0 else math.inf


def render_table(results: Mapping[Mode, Mapping[PathName, PathResult]], concurrency: int) -> list[str]:
    header = (
        f"{'mode':<7} {'path':<12} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'p50 x':>7} {'p99 x':>7} {'calls/s x':>10}  p50 <= {TARGET_P50_RATIO}x direct"
    )
    lines = [header, "-" * len(header)]
    for mode, by_path in results.items():
        direct = by_path["direct"]
        for path, result in by_path.items():
            row = (
                f"{mode:<7} {path:<12} {result.concurrent.calls_per_second:>9.0f}"
                f" {result.sequential.p50_ms:>8.3f} {result.sequential.p99_ms:>8.3f}"
            )
            if path != "direct":
                p50 = ratio(result.sequential.p50_ms, direct.sequential.p50_ms)
                p99 = ratio(result.sequential.p99_ms, direct.sequential.p99_ms)
                rate = ratio(result.concurrent.calls_per_second, direct.concurrent.calls_per_second)
                verdict = "yes" if p50 <= TARGET_P50_RATIO else "NO"
                row += f" {p50:>6.2f}x {p99:>6.2f}x {rate:>9.2f}x  {verdict}"
            lines.append(row)
    lines.append(
        f"calls/s: {concurrency} clients at once; p50/p99: sequential calls on one keep-alive connection;"
        " x: gateway / direct"
    )
    return lines


def verdict(results: Mapping[Mode, Mapping[PathName, PathResult]]) -> str:
    """The target on the like-for-like path (gateway without TLS); gateway+tls shown for information."""
    parts = []
    met = True
    for mode, by_path in results.items():
        if "gateway" not in by_path:
            continue
        p50 = ratio(by_path["gateway"].sequential.p50_ms, by_path["direct"].sequential.p50_ms)
        met = met and p50 <= TARGET_P50_RATIO
        parts.append(f"{mode} {p50:.2f}x")
    state = "met" if met else "NOT met"
    return (
        f"target p50 through the gateway <= {TARGET_P50_RATIO}x direct (same transport): {state}"
        f" ({', '.join(parts)})"
    )


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
        help="Stack whose gateway configuration runs (default: %(default)s).",
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
        default=5,
        help="Turns the paths take, each a share of the calls (default: %(default)s).",
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
    fleet = load_fleet(args.env)
    variants: list[tuple[PathName, Fleet]] = [("gateway", gateway_variant(fleet, tls=False))]
    if terminates_tls(fleet.settings):
        variants.append(("gateway+tls", gateway_variant(fleet, tls=True)))
    settings = Settings(args.calls, args.concurrency, args.warmup, args.rounds)
    gateway_settings = fleet.settings.gateway
    echo(f"gateway benchmark: environment {args.env} (examples/catalog), {haproxy_version(haproxy)}")
    for mode, workload in WORKLOADS.items():
        era = "2026-07-28, stateless" if mode == "modern" else "2025-11-25, one session per client"
        echo(f"  {mode} ({era}): {workload.server}/{workload.tool}")
    echo(
        f"  {settings.calls} sequential calls and {settings.calls} calls from {settings.concurrency} clients"
        f" per mode and path, after {settings.warmup} warm-up calls, in {settings.rounds} rounds"
    )
    echo(
        "  direct: plain HTTP to the server; gateway: the stack's configuration with TLS at the load balancer"
    )
    if len(variants) == 2:
        echo(
            f"  gateway+tls: the stack's configuration as shipped (tls: {gateway_settings.tls}): HAProxy"
            " terminates TLS (self-signed here), direct has no TLS"
        )
    else:
        echo(f"  no gateway+tls: TLS ends at the load balancer in {args.env} (tls: {gateway_settings.tls})")
    echo(
        f"  tokens: {gateway_settings.auth.algorithm}, checked on every call; rate limits raised to the most"
        f" a stack may set (stack: {gateway_settings.rate_limits.per_caller_per_minute}/min per caller)"
    )
    stop = threading.Event()
    children: list[process.Child] = []
    try:
        servers = start_servers(fleet, children, run_dir)
        taken: set[str] = set()
        gateways = [
            start_gateway(haproxy, path, variant, servers, run_dir, children, taken)
            for path, variant in variants
        ]
        results: dict[Mode, dict[PathName, PathResult]] = {}
        with start_blocking_portal() as portal:
            for mode, workload in WORKLOADS.items():
                targets = targets_for(workload, servers, gateways)
                results[mode] = measure(portal, workload, targets, settings, stop, echo)
        for mode, by_path in results.items():
            for path, result in by_path.items():
                if result.gateway_answered != (path != "direct"):
                    raise BenchError(
                        f"{mode} {path}: answered {'by' if result.gateway_answered else 'without'} the"
                        " gateway, against the path's purpose"
                    )
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
    print(verdict(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
