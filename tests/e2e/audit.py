"""Audit acceptance: the MCP router's audit records joined, by request id, with what the servers themselves
ran (their call logs) and with the gateway's access log, and every disagreement named.

The records of one request share its id: HAProxy makes it (`X-Request-ID`, written in its access log),
the router writes it in its audit records (docs/router.md: a forward record just before it sends the
message upstream, the full record once the answer ends) and hands it on, and a reference server started
with `--call-log` writes the id that reached it beside the message it executed
(examples/servers/common.py, `CallLog`). `check` reads them and lists every rule broken:

- a server ran a message with no forward record, or whose forward record names another method or tool,
  or another server (the forward record is written before the server can run the message: no excuse);
- a server ran a message whose full record names another method or tool, another server, or is missing
  (missing is excused for a message in flight on a router replica that was killed);
- a message has two forward or two full records, or its two records disagree (caller, server, method,
  tool, era, router replica), or the router says a server answered or failed a message it never
  wrote a forward record of;
- a message reached a server with other than exactly one `X-Request-ID` (the gateway's) and one
  `X-Forwarded-For` (the client address the gateway saw), or with `Forwarded` or `Authorization`;
- one request id ran twice on the servers;
- the router refused a message (or HAProxy did) and a server ran it anyway;
- the router says a server answered a message successfully, and that server has no record of it;
- the gateway sent a request to a router replica, and no router wrote an audit record of it.

The router also sends servers requests of its own: its listings (mcpfleet/router/listings.py), each with
an `X-Request-ID` of the router's form (`listing-<uuid4>`) and a listing record (`"event": "listing"`). A
message a server ran under such an id is accounted for by that record (same server, same method), and
must carry no `X-Forwarded-For` (no client stands behind it) and be one a listing sends (a handshake, a
list, a listen, a ping: never a call); a listing id that a gateway logged or a router forwarded is a fault.
And where the fleet endpoint forwards a call to a server that keeps sessions, the router opens a session
of its own there with the call's request id (docs/router.md, "Serving /mcp"): an `initialize` and its
`notifications/initialized` on the server the call's forward record names, under that id, are accounted
for by that record (at most twice: once more when the server no longer knew the session).

Servers without a call log (server-everything) are compared through what they return, by the tests.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What the router's audit record calls requests that carry no JSON-RPC message of their own.
NOT_MESSAGES = frozenset({"GET", "DELETE", "response"})
# Outcomes saying the server answered the message itself (docs/router.md, audit record).
ANSWERED = frozenset({"ok", "tool_error"})
# HAProxy's name for "no backend server": the gateway answered the request itself.
NO_SERVER = "<NOSRV>"
# The router's own requests to servers (its listings) carry request ids of this form.
LISTING_PREFIX = "listing-"
# What a listing may send a server: the handshake, the lists, a listen stream, a ping; never a call.
LISTING_METHODS = frozenset(
    {
        "initialize",
        "notifications/initialized",
        "notifications/cancelled",
        "server/discover",
        "ping",
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "prompts/list",
        "subscriptions/listen",
    }
)
# What the router sends a server that keeps sessions to open one of its own for a fleet endpoint call.
BACKEND_HANDSHAKE = frozenset({"initialize", "notifications/initialized"})
BACKEND_OPENINGS = 2


@dataclass(frozen=True)
class ServerCall:
    """One message a server executed, as its call log says."""

    server: str
    replica: str
    method: str
    tool: str | None
    forwarding: Mapping[str, list[str]]
    """Every value of each forwarding header that arrived (x-request-id, x-forwarded-for, forwarded, ...)."""
    headers: frozenset[str]
    """The names of the headers that arrived (never values)."""
    repeated: frozenset[str]
    session: str | None

    @property
    def request_id(self) -> str | None:
        values = self.forwarding.get("x-request-id", [])
        return values[0] if len(values) == 1 else None

    @classmethod
    def from_line(cls, server: str, entry: Mapping[str, Any]) -> ServerCall:
        forwarding = entry.get("forwarding")
        if forwarding is None:
            raise ValueError(f"a call log line without `forwarding` (an older server?): {entry}")
        return cls(
            server=server,
            replica=entry["replica"],
            method=entry["method"],
            tool=entry["tool"],
            forwarding={k: list(v) for k, v in forwarding.items()},
            headers=frozenset(entry["headers"]),
            repeated=frozenset(entry.get("repeated", ())),
            session=entry.get("session"),
        )


@dataclass(frozen=True)
class ForwardRecord:
    """A router's write-ahead record of a message it was about to send upstream, and which replica
    wrote it."""

    router: str
    request_id: str
    caller: str | None
    server: str | None
    method: str | None
    tool: str | None
    session: str | None
    era: str | None
    time: float
    """When the message was about to be sent (seconds since the epoch)."""
    endpoint: str | None = None
    """`server` (a per-server route) or `fleet` (the fleet endpoint, /mcp)."""

    @classmethod
    def from_line(cls, router: str, entry: Mapping[str, Any]) -> ForwardRecord:
        return cls(
            router=router,
            request_id=entry["request_id"],
            caller=entry["caller"],
            server=entry["server"],
            method=entry["method"],
            tool=entry["tool"],
            session=entry["session"],
            era=entry["era"],
            time=_timestamp(entry["time"]),
            endpoint=entry.get("endpoint"),
        )


def _timestamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class AuditRecord:
    """One full record of a router's audit log (docs/router.md), and which router replica wrote it."""

    router: str
    request_id: str
    client: str | None
    caller: str | None
    server: str | None
    method: str | None
    tool: str | None
    outcome: str
    status: int
    rpc_code: int | None
    session: str | None
    era: str | None
    end: float
    """When the record was written, the answer's end (seconds since the epoch)."""
    latency_ms: float
    endpoint: str | None = None
    """`server` (a per-server route) or `fleet` (the fleet endpoint, /mcp)."""

    @classmethod
    def from_line(cls, router: str, entry: Mapping[str, Any]) -> AuditRecord:
        return cls(
            end=_timestamp(entry["time"]),
            latency_ms=entry["latency_ms"],
            endpoint=entry.get("endpoint"),
            router=router,
            request_id=entry["request_id"],
            client=entry["client"],
            caller=entry["caller"],
            server=entry["server"],
            method=entry["method"],
            tool=entry["tool"],
            outcome=entry["outcome"],
            status=entry["status"],
            rpc_code=entry["rpc_code"],
            session=entry["session"],
            era=entry["era"],
        )


@dataclass(frozen=True)
class ListingRecord:
    """A router's record of one request its own client sent a server to list it (docs/router.md)."""

    router: str
    request_id: str
    server: str
    pod: str
    method: str
    status: int
    outcome: str
    time: float

    @classmethod
    def from_line(cls, router: str, entry: Mapping[str, Any]) -> ListingRecord:
        return cls(
            router=router,
            request_id=entry["request_id"],
            server=entry["server"],
            pod=entry["pod"],
            method=entry["method"],
            status=entry["status"],
            outcome=entry["outcome"],
            time=_timestamp(entry["time"]),
        )


def json_lines(path: Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects among a log's complete lines from line `start` on, and the line count.

    A log may also hold other lines (a router's stderr shares its file) and, while its writer runs, a
    last line not yet complete: only lines that end are read."""
    if not path.exists():
        return [], 0
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")[:-1]  # the part after the last newline is not a line yet
    found = []
    for line in lines[start:]:
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found, len(lines)


def audit_lines(router: str, entries: Iterable[Mapping[str, Any]]) -> list[AuditRecord]:
    """The full records among a router's log lines (one per message, written as its answer ends)."""
    return [
        AuditRecord.from_line(router, e)
        for e in entries
        if e.get("event") == "message" and "request_id" in e and "outcome" in e
    ]


def forward_lines(router: str, entries: Iterable[Mapping[str, Any]]) -> list[ForwardRecord]:
    """The forward records among a router's log lines (one per message sent upstream, written before)."""
    return [ForwardRecord.from_line(router, e) for e in entries if e.get("event") == "forward"]


def listing_lines(router: str, entries: Iterable[Mapping[str, Any]]) -> list[ListingRecord]:
    """The listing records among a router's log lines (one per request of the router's own client)."""
    return [ListingRecord.from_line(router, e) for e in entries if e.get("event") == "listing"]


@dataclass
class Audit:
    """The join of one stretch of the run: the pairs that agree, and every rule broken."""

    records: list[AuditRecord]
    calls: list[ServerCall]
    forwards: list[ForwardRecord] | None = None
    """The forward records, when the join was given them (else their rules were not applied)."""
    pairs: list[tuple[AuditRecord, ServerCall]] = field(default_factory=list)
    listed: list[tuple[ListingRecord, ServerCall]] = field(default_factory=list)
    """Messages the servers ran for the routers' own listings, each with its listing record."""
    handshakes: list[ServerCall] = field(default_factory=list)
    """Sessions the router opened on servers for fleet endpoint calls (under the call's request id)."""
    problems: list[str] = field(default_factory=list)
    excused: list[ServerCall] = field(default_factory=list)
    """Calls without a full record or gateway log line that the caller excused (in flight on a killed
    router or gateway replica)."""

    def tools_run(self, server: str | None = None) -> Counter[str]:
        """Tools the servers ran (and the router named alike), by name."""
        return Counter(
            call.tool for _, call in self.pairs if call.tool is not None and server in (None, call.server)
        )

    def summary(self) -> str:
        refused = sum(1 for r in self.records if r.outcome == "refused")
        forwards = "" if self.forwards is None else f"{len(self.forwards)} forward records, "
        return (
            f"{forwards}{len(self.records)} audit records, {len(self.calls)} messages run by servers,"
            f" {len(self.pairs)} joined by request id with the same method and tool,"
            f" {len(self.listed)} the routers' own listing requests,"
            f" {len(self.handshakes)} the router's own sessions for fleet calls,"
            f" {refused} refused by the router, {len(self.excused)} excused, {len(self.problems)} problems"
        )

    def assert_agrees(self) -> None:
        assert not self.problems, f"{self.summary()}:\n" + "\n".join(self.problems[:40])


def check(
    records: Iterable[AuditRecord],
    calls: Iterable[ServerCall],
    gateway_entries: Iterable[Mapping[str, Any]] = (),
    recorded: Collection[str] = (),
    excused: Collection[str] = (),
    forwards: Iterable[ForwardRecord] | None = None,
    listings: Iterable[ListingRecord] = (),
) -> Audit:
    """Join router records, server calls and gateway entries of one stretch of the run by request id.

    recorded: the servers whose every replica keeps a call log (a successful answer of theirs must have a
    call). excused: request ids allowed to have run without a full record or a gateway log line (in
    flight on a router or gateway replica that was killed: each writes its line when the answer ends),
    never without a forward record, or allowed an answer no replica ran (a notification a server replica
    accepted, 202, and was killed before running: MCP answers notifications before it handles them).
    forwards: the routers' forward records; without them (None) their
    rules are not applied. listings: the routers' listing records, to look the calls of their own listings
    up in (give them all, not only the stretch's: a listing record is written as its answer starts, so it
    may fall either side of the stretch's start from the message the server logged)."""
    audit = Audit(list(records), list(calls), None if forwards is None else list(forwards))
    by_id: dict[str, list[AuditRecord]] = defaultdict(list)
    for record in audit.records:
        by_id[record.request_id].append(record)
    ahead: dict[str, list[ForwardRecord]] = defaultdict(list)
    for forward in audit.forwards or ():
        ahead[forward.request_id].append(forward)
    listed: dict[str, list[ListingRecord]] = defaultdict(list)
    for listing in listings:
        listed[listing.request_id].append(listing)
    gateway_ids: dict[str, Mapping[str, Any]] = {e["request_id"]: e for e in gateway_entries}
    ran: dict[str, list[ServerCall]] = defaultdict(list)
    opened: Counter[tuple[str, str]] = Counter()
    problems = audit.problems

    for listing_id, found in listed.items():
        if len(found) > 1:
            problems.append(f"listing request {listing_id}: {len(found)} listing records")
        if not listing_id.startswith(LISTING_PREFIX):
            problems.append(f"{found[0].router} wrote a listing record with request id {listing_id}")
        if listing_id in gateway_ids or listing_id in by_id or listing_id in ahead:
            problems.append(f"the listing request id {listing_id} is also a client's request")

    for call in audit.calls:
        where = f"{call.replica} ran {call.method}" + (f" {call.tool}" if call.tool else "")
        ids = call.forwarding.get("x-request-id", [])
        forwarded_for = call.forwarding.get("x-forwarded-for", [])
        if len(ids) != 1:
            problems.append(f"{where} with X-Request-ID {ids} (exactly one, the gateway's, expected)")
        if len(ids) == 1 and ids[0].startswith(LISTING_PREFIX):
            ran[ids[0]].append(call)
            _check_listing_call(call, where, listed.get(ids[0], []), audit, problems)
            continue
        if len(forwarded_for) != 1:
            problems.append(f"{where} with X-Forwarded-For {forwarded_for} (exactly one expected)")
        for name in ("forwarded", "x-real-ip"):
            if name in call.forwarding:
                problems.append(f"{where} with {name}: {call.forwarding[name]}")
        if "authorization" in call.headers:
            problems.append(f"{where} with an Authorization header")
        if call.repeated:
            problems.append(f"{where} with repeated headers {sorted(call.repeated)}")
        request_id = call.request_id
        if request_id is None:
            continue
        announced = ahead.get(request_id, [])
        if (
            call.method in BACKEND_HANDSHAKE
            and announced
            and announced[0].endpoint == "fleet"
            and announced[0].server == call.server
            and announced[0].method not in BACKEND_HANDSHAKE
        ):
            # The router's own session on this server, opened for the fleet call of this request id.
            opened[(request_id, call.method)] += 1
            if opened[(request_id, call.method)] > BACKEND_OPENINGS:
                problems.append(f"{where} {opened[(request_id, call.method)]} times for request {request_id}")
            audit.handshakes.append(call)
            continue
        ran[request_id].append(call)
        logged = gateway_ids.get(request_id)
        if gateway_ids and logged is None:
            if request_id in excused:
                audit.excused.append(call)
            else:
                problems.append(f"{where} with request id {request_id}, which no gateway logged")
        if logged is not None and forwarded_for and forwarded_for != [logged["client"]]:
            problems.append(f"{where}: X-Forwarded-For {forwarded_for}, the gateway saw {logged['client']}")
        if audit.forwards is not None:
            if not announced:
                problems.append(f"{where} (request {request_id}) and no router wrote a forward record of it")
            elif (announced[0].server, announced[0].method, announced[0].tool) != (
                call.server,
                call.method,
                call.tool,
            ):
                problems.append(
                    f"{where} (request {request_id}); the forward record of {announced[0].router} says"
                    f" server {announced[0].server}, {announced[0].method} {announced[0].tool}"
                )
        matching = by_id.get(request_id, [])
        if not matching:
            if request_id in excused:
                if call not in audit.excused:
                    audit.excused.append(call)
            else:
                problems.append(f"{where} (request {request_id}) and no router wrote an audit record of it")
            continue
        if len(matching) > 1:
            problems.append(f"request {request_id}: {len(matching)} audit records")
        record = matching[0]
        said = (record.server, record.method, record.tool)
        if said != (call.server, call.method, call.tool):
            problems.append(
                f"{where} (request {request_id}); the audit record of {record.router} says"
                f" server {record.server}, {record.method} {record.tool}"
            )
        else:
            audit.pairs.append((record, call))

    for request_id, runs in ran.items():
        if len(runs) > 1:
            problems.append(f"request {request_id} ran {len(runs)} times: {[c.replica for c in runs]}")
    for record in audit.records:
        runs = ran.get(record.request_id, [])
        if record.outcome == "refused" and runs:
            problems.append(
                f"{record.router} refused request {record.request_id} ({record.method} {record.tool},"
                f" {record.status}) and {runs[0].replica} ran it"
            )
        elif (
            record.outcome in ANSWERED
            and record.server in recorded
            and record.method not in NOT_MESSAGES
            and record.status < 300
            and not runs
            and record.request_id not in excused
        ):
            problems.append(
                f"{record.router}: request {record.request_id} to {record.server}, {record.method}"
                f" {record.tool}, answered {record.outcome} ({record.status}), and no replica ran it"
            )
    if audit.forwards is not None:
        _check_forwards(ahead, by_id, problems)
    for request_id, entry in gateway_ids.items():
        if (
            entry.get("router") not in (None, NO_SERVER)
            and request_id not in by_id
            and request_id not in excused
        ):
            problems.append(
                f"{entry.get('gateway', 'a gateway')} sent request {request_id} to {entry['router']}"
                f" ({entry['status']}, {entry['termination']}) and no router wrote an audit record of it"
            )
        if entry.get("router") == NO_SERVER and (ran.get(request_id) or by_id.get(request_id)):
            problems.append(
                f"the gateway answered request {request_id} itself ({entry['status']}), yet it ran"
            )
    return audit


def _check_listing_call(
    call: ServerCall, where: str, found: list[ListingRecord], audit: Audit, problems: list[str]
) -> None:
    """A message a server ran under a request id of the router's own listings."""
    request_id = call.forwarding["x-request-id"][0]
    if call.forwarding.get("x-forwarded-for"):
        problems.append(
            f"{where} under listing id {request_id} with X-Forwarded-For {call.forwarding['x-forwarded-for']}"
            " (the router's own request speaks for no client)"
        )
    for name in ("forwarded", "x-real-ip"):
        if name in call.forwarding:
            problems.append(f"{where} under listing id {request_id} with {name}: {call.forwarding[name]}")
    if "authorization" in call.headers:
        problems.append(f"{where} under listing id {request_id} with an Authorization header")
    if call.repeated:
        problems.append(
            f"{where} under listing id {request_id} with repeated headers {sorted(call.repeated)}"
        )
    if call.method not in LISTING_METHODS or call.tool is not None:
        problems.append(f"{where} under listing id {request_id}: a listing never sends that")
    if not found:
        problems.append(f"{where} under listing id {request_id} and no router wrote a listing record of it")
        return
    listing = found[0]
    if (listing.server, listing.method) != (call.server, call.method):
        problems.append(
            f"{where} under listing id {request_id}; the listing record of {listing.router} says"
            f" server {listing.server}, {listing.method}"
        )
        return
    audit.listed.append((listing, call))


# Full records of messages the router sent upstream (every outcome but its own refusals and failures).
FORWARDED = frozenset({"ok", "tool_error", "rpc_error", "upstream_error"})


def _check_forwards(
    ahead: Mapping[str, list[ForwardRecord]], by_id: Mapping[str, list[AuditRecord]], problems: list[str]
) -> None:
    """Each forward record against the full record of the same message, and the reverse."""
    for request_id, announced in ahead.items():
        if len(announced) > 1:
            problems.append(f"request {request_id}: {len(announced)} forward records")
        forward = announced[0]
        for record in by_id.get(request_id, []):
            said = (record.router, record.caller, record.server, record.method, record.tool, record.era)
            meant = (
                forward.router,
                forward.caller,
                forward.server,
                forward.method,
                forward.tool,
                forward.era,
            )
            if said != meant:
                problems.append(
                    f"request {request_id}: the forward record says {meant}, the full record {said}"
                )
    for request_id, records in by_id.items():
        for record in records:
            # A stream (GET) may have been forwarded before the stretch began and end within it. The
            # fleet endpoint answers its handshake and lists itself (server ""): nothing is forwarded.
            answered_by_router = record.endpoint == "fleet" and not record.server
            if (
                record.outcome in FORWARDED
                and record.method != "GET"
                and request_id not in ahead
                and not answered_by_router
            ):
                problems.append(
                    f"{record.router}: request {request_id} to {record.server}, {record.method}"
                    f" {record.tool}, {record.outcome} ({record.status}), and no forward record of it"
                )
