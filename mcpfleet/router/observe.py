"""What the router tells operators: one audit line per message, and its Prometheus series."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

AUDIT_LOGGER = "mcpfleet.router.audit"
audit_log = logging.getLogger(AUDIT_LOGGER)

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

    def line(self) -> str:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return json.dumps(
            {
                "time": now,
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
            },
            separators=(",", ":"),
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

    def observe(self, record: Record, seconds: float, method: str, tool: str) -> None:
        server = record.server or ""
        self.requests.labels(server, method, tool, record.outcome, code_label(record.rpc_code)).inc()
        self.duration.labels(server, method, tool).observe(seconds)
