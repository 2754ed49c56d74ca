"""What the router tells operators: audit lines (a forward record before a message is sent upstream, the
full record once its answer ends, a listing record per request of its own), and its Prometheus series."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

AuditSink = Callable[[bytes], None]
"""Takes one audit line (JSON and its newline) and hands it on at once."""
_ENCODER = json.JSONEncoder(separators=(",", ":"))

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# JSON-RPC codes worth a label of their own; anything else a server invents is "other", so a server
# cannot grow the series without bound.
KNOWN_CODES = frozenset(
    {-32700, -32600, -32601, -32602, -32603, -32001, -32003, -32020, -32021, -32022, -32029, -32042, -32000}
)


def code_label(code: int | None) -> str:
    if code is None:
        return ""
    return str(code) if code in KNOWN_CODES else "other"


def session_digest(session_id: str | None) -> str | None:
    """First 16 hex of the sha256 of a session id: correlates records without writing the id."""
    if session_id is None:
        return None
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:16]


class _Clock:
    """UTC time as the audit records write it (`2026-12-06T03:04:05.678Z`); the part up to the second is
    formatted once a second, not twice a message."""

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second, self.prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self.prefix}.{int((now - second) * 1000):03d}Z"


_now = _Clock().now


def _line(fields: dict[str, Any]) -> bytes:
    return (_ENCODER.encode(fields) + "\n").encode("ascii")


def write_to(fd: int) -> AuditSink:
    """A sink writing each line with one write() on fd (stdout: 1), no buffer in between: once written, a
    line is the kernel's (the log file, the container runtime's pipe), so a replica killed a moment later
    has not lost it. A failed write raises: a message is not forwarded without its forward record."""

    def write(line: bytes) -> None:
        written = os.write(fd, line)
        while written < len(line):  # a pipe may take less at once; the rest follows
            line = line[written:]
            written = os.write(fd, line)

    return write


def discard(line: bytes) -> None:
    """The sink of a router run inside another program that reads its state instead (tests)."""


@dataclass
class Record:
    """One message's audit record, filled in as the request goes."""

    request_id: str
    client: str | None
    caller: str | None = None
    server: str | None = None
    method: str | None = None
    tool: str | None = None
    outcome: str = "refused"
    status: int = 0
    rpc_code: int | None = None
    latency_ms: float = 0.0
    session: str | None = None
    era: str | None = None
    endpoint: str = "server"
    """`server` (a per-server route) or `fleet` (the unified endpoint, docs/router.md)."""

    def forward_line(self) -> bytes:
        """The write-ahead record, written just before the message goes upstream: what is about to run and
        for whom (never arguments or tokens), so a message is audited even when its router dies before
        the answer ends."""
        return _line(
            {
                "event": "forward",
                "time": _now(),
                "request_id": self.request_id,
                "caller": self.caller,
                "server": self.server,
                "method": self.method,
                "tool": self.tool,
                "session": self.session,
                "era": self.era,
                "endpoint": self.endpoint,
            }
        )

    def line(self) -> bytes:
        """The full record, written once the answer has ended (or the router answered itself)."""
        return _line(
            {
                "event": "message",
                "time": _now(),
                "request_id": self.request_id,
                "client": self.client,
                "caller": self.caller,
                "server": self.server,
                "method": self.method,
                "tool": self.tool,
                "outcome": self.outcome,
                "status": self.status,
                "rpc_code": self.rpc_code,
                "latency_ms": round(self.latency_ms, 3),
                "session": self.session,
                "era": self.era,
                "endpoint": self.endpoint,
            }
        )


def listing_line(
    request_id: str,
    server: str,
    pod: str,
    method: str,
    status: int,
    outcome: str,
    latency_ms: float,
) -> bytes:
    """The record of one request the router's own client sent a server to list it (listings.py): no
    caller and no client stand behind it, so it is told apart by `event` and its request id's form."""
    return _line(
        {
            "event": "listing",
            "time": _now(),
            "request_id": request_id,
            "server": server,
            "pod": pod,
            "method": method,
            "status": status,
            "outcome": outcome,
            "latency_ms": round(latency_ms, 3),
        }
    )


class Metrics:
    """The router's series (docs/router.md), in a registry of its own so several routers share a process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mcp_router_requests",
            "MCP messages through the router, by server, method, tool, outcome and JSON-RPC error code.",
            ["server", "method", "tool", "outcome", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "mcp_router_request_duration_seconds",
            "Time from the request's arrival to the end of its answer, by server, method and tool.",
            ["server", "method", "tool"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.refusals = Counter(
            "mcp_router_refusals",
            "Requests the router refused itself, by server and reason.",
            ["server", "reason"],
            registry=self.registry,
        )
        self.endpoints = Gauge(
            "mcp_router_upstream_endpoints",
            "Pods the router currently reaches per server.",
            ["server"],
            registry=self.registry,
        )

        # The router's own listings of the servers and the run-time tool pins (mcpfleet/router/listings.py).
        # Labels are server names and declared tool names from router.json: bounded by the catalog, never
        # by what a server lists.
        self.tool_withheld = Gauge(
            "mcp_router_tool_withheld",
            "1 while a declared tool is withheld from lists and calls: drifted from its pin, or unpinned"
            " where unpinned tools are withheld.",
            ["server", "tool", "reason"],
            registry=self.registry,
        )
        self.tool_drift_refusals = Counter(
            "mcp_router_tool_drift_refusals",
            "Calls refused because the tool's live definition no longer matches its catalog pin.",
            ["server", "tool"],
            registry=self.registry,
        )
        self.listing_up = Gauge(
            "mcp_router_listing_up",
            "1 while the router holds a current listing of the server, 0 while it cannot list it.",
            ["server"],
            registry=self.registry,
        )
        self.listing_refresh = Counter(
            "mcp_router_listing_refresh",
            "Listings of a server the router attempted, by outcome (ok, error).",
            ["server", "outcome"],
            registry=self.registry,
        )
        self.listing_items = Gauge(
            "mcp_router_listing_items",
            "Items in the router's current listing of a server, by kind (tools, resources,"
            " resource_templates, prompts).",
            ["server", "kind"],
            registry=self.registry,
        )
        self.listing_cut = Gauge(
            "mcp_router_listing_cut",
            "Items the server served beyond the listing's bounds (items per list, bytes per server), left out"
            " of the router's current listing, by kind.",
            ["server", "kind"],
            registry=self.registry,
        )

        # Each labelled child, once found, by its labels: prometheus_client's own lookup validates and
        # converts the labels on every call. Bounded as the series are (docs/router.md).
        self._counted: dict[tuple[str, str, str, str, str], Counter] = {}
        self._timed: dict[tuple[str, str, str], Histogram] = {}

    def observe(self, record: Record, seconds: float, method: str, tool: str) -> None:
        server = record.server or ""
        counted = (server, method, tool, record.outcome, code_label(record.rpc_code))
        counter = self._counted.get(counted)
        if counter is None:
            counter = self._counted[counted] = self.requests.labels(*counted)
        counter.inc()
        timed = (server, method, tool)
        histogram = self._timed.get(timed)
        if histogram is None:
            histogram = self._timed[timed] = self.duration.labels(*timed)
        histogram.observe(seconds)
