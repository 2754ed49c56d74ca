"""Playing one case: send it, wait for the records, and hold what came back against what the servers
themselves recorded and against the routers' audit records, joined with the gateways' logs by request
id (tests/e2e/audit.py)."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.attacks.cases import (
    Answered,
    Case,
    Closed,
    Expectation,
    Forwarded,
    Post,
    Raw,
    Refused,
    Served,
    Steps,
)
from tests.e2e.attacks.kit import DEFAULT, LEGACY, MARKER_ADDRESS, MARKER_REQUEST_ID, Kit, issued_by_gateway
from tests.e2e.attacks.stack import Stack
from tests.e2e.attacks.wire import Exchange, Reply
from tests.e2e.audit import NO_SERVER, Audit, AuditRecord, ServerCall, check
from tests.e2e.gateway import RECORDED_SERVERS, Mark

AUDIT_WAIT_SECONDS = 10.0
DIRECT_SETTLE_SECONDS = 0.3
# Every server keeps its own record while the corpus runs: server-everything through recorder.mjs.
RECORDED = frozenset(RECORDED_SERVERS | {"everything"})


@dataclass
class Outcome:
    """What one case came to: problems (empty when it held), and everything needed to report it."""

    case: Case
    subject: str
    problems: list[str] = field(default_factory=list)
    breakthrough: bool = False
    """A forbidden record appeared: the trick got through."""
    exchanges: list[tuple[str, Exchange]] = field(default_factory=list)
    calls: list[ServerCall] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)
    direct: bool | None = None
    """Straight to the server, did the same message run the forbidden tool."""
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def report(self) -> str:
        lines = [f"case {self.case.name!r} ({self.case.category}), caller {self.subject}:"]
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        for label, exchange in self.exchanges:
            lines.append(f"  [{label}] " + exchange.describe().replace("\n", "\n    "))
        lines.append("  servers recorded:")
        lines += [f"    {_call(call)}" for call in self.calls] or ["    (nothing)"]
        lines.append("  routers audited:")
        lines += [f"    {_record(record)}" for record in self.audit] or ["    (nothing)"]
        return "\n".join(lines)


def _call(call: ServerCall) -> str:
    return (
        f"{call.replica} {call.method} {call.tool} request={call.request_id} session={call.session}"
        f" forwarding={dict(call.forwarding)}"
    )


def _record(record: AuditRecord) -> str:
    return (
        f"{record.router} {record.request_id} caller={record.caller} {record.server} {record.method}"
        f" {record.tool} {record.outcome} {record.status} {record.rpc_code} client={record.client}"
    )


def _attack(kit: Kit, case: Case) -> Exchange:
    attack = case.attack
    if isinstance(attack, Post):
        token = attack.token(kit) if attack.token is not None else DEFAULT
        session = DEFAULT if attack.session else None
        return kit.send(
            kit.post_bytes(
                attack.body,
                attack.headers,
                drop=attack.drop,
                path=attack.path,
                token=token,
                session=session,
                host=attack.host,
            )
        )
    if isinstance(attack, Raw):
        return kit.send(attack.build(kit), idle=attack.idle, pause=attack.pause)
    assert isinstance(attack, Steps)
    return attack.run(kit)


def _answered_by_router(expectation: Expectation) -> bool:
    return isinstance(expectation, Served | Forwarded) or (
        isinstance(expectation, Refused) and expectation.by == "router"
    )


def joined(stack: Stack, since: Mark, request_ids: Collection[str]) -> Audit:
    """The audit join of the case's stretch of the run, once it has no problems and a record of each of
    request_ids, or once AUDIT_WAIT_SECONDS have passed (records are written as answers end)."""
    deadline = time.monotonic() + AUDIT_WAIT_SECONDS
    while True:
        running = stack.running
        result = check(
            running.audit_records(since),
            running.server_calls(since),
            running.gateway_entries(since),
            recorded=RECORDED,
            forwards=running.forward_records(since),
            listings=running.listing_records(),
        )
        audited = {record.request_id for record in result.records}
        if (not result.problems and set(request_ids) <= audited) or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def play(stack: Stack, case: Case, subject: str, source: str | None = None) -> Outcome:
    started = time.monotonic()
    outcome = Outcome(case, subject)
    kit = Kit(stack, case.target, subject, source)
    # A control runs the tool the target's caller may not: its own caller may.
    served = {(e.server or case.target.server, e.tool) for e in case.expect if isinstance(e, Served)}
    kit.forbids = [f for f in kit.forbids if (f.server, f.tool) not in served]
    mark = stack.mark()
    try:
        attack = _attack(kit, case)
    except AssertionError as error:
        outcome.problems.append(f"the case could not be played: {error}")
        outcome.exchanges = kit.exchanges
        return outcome
    wanted = [
        reply.request_id
        for reply, expectation in zip(attack.replies, case.expect, strict=False)
        if reply.request_id and _answered_by_router(expectation)
    ]
    time.sleep(case.settle)
    audit = joined(stack, mark, wanted)
    outcome.problems += [f"audit join: {problem}" for problem in audit.problems]
    # Records of the case's own preparation (sessions opened, notes added) are not part of the attack.
    setup = {
        reply.request_id
        for label, exchange in kit.exchanges
        if label != "attack"
        for reply in exchange.replies
        if reply.request_id
    }
    outcome.calls = [c for c in audit.calls if c.request_id not in setup]
    outcome.audit = [r for r in audit.records if r.request_id not in setup]
    # The routers' own listing requests, each matched to its listing record by the join.
    listed = {call.request_id for _, call in audit.listed}
    outcome.problems += judge(case, kit, attack, outcome.calls, outcome.audit, listed)
    outcome.breakthrough = any(p.startswith("BREAKTHROUGH") for p in outcome.problems)
    for post_check in kit.checks:
        problem = post_check()
        if problem:
            outcome.problems.append(problem)
    if isinstance(case.attack, Post) and case.attack.direct is not None:
        outcome.direct = probe_directly(kit, case.attack)
        if outcome.direct != case.attack.direct:
            said = "runs the tool" if case.attack.direct else "is refused by the server"
            saw = "ran" if outcome.direct else "did not run"
            outcome.problems.append(
                f"straight to {case.target.server} the table says the message {said}, but the tool {saw}"
            )
    outcome.exchanges = kit.exchanges
    outcome.figures = kit.figures
    drain(stack, mark, kit)
    outcome.seconds = time.monotonic() - started
    return outcome


def drain(stack: Stack, since: Mark, kit: Kit) -> None:
    """Until every answer the case got has its gateway log line, and its audit record when the gateway
    sent it to a router: both are written as an answer ends, a little after the client has it, and the
    next case's stretch of the run must not start with this one's tail."""
    request_ids = {
        reply.request_id for _, exchange in kit.exchanges for reply in exchange.replies if reply.request_id
    }
    deadline = time.monotonic() + AUDIT_WAIT_SECONDS
    while request_ids and time.monotonic() < deadline:
        logged = {entry["request_id"]: entry for entry in stack.running.gateway_entries(since)}
        audited = {record.request_id for record in stack.audit(since)}
        pending = [
            rid
            for rid in request_ids
            if rid not in logged
            or (logged[rid].get("router") not in (None, NO_SERVER) and rid not in audited)
        ]
        if not pending:
            return
        time.sleep(0.05)


def judge(
    case: Case,
    kit: Kit,
    attack: Exchange,
    calls: list[ServerCall],
    audit: list[AuditRecord],
    listed: Collection[str | None] = (),
) -> list[str]:
    """Everything the case must come to, beyond the audit join: the answers, and what must not have run.
    listed: request ids of the routers' own listing requests (the join matched each to its record)."""
    problems: list[str] = []
    replies = attack.replies
    if any(isinstance(e, Closed) for e in case.expect):
        if replies or not attack.closed:
            problems.append(f"expected no answer and a closed connection: {attack.describe()}")
    elif not replies and attack.closed and all(isinstance(e, Refused) and e.or_reset for e in case.expect):
        pass
    elif len(replies) != len(case.expect):
        problems.append(f"{len(replies)} answers on the connection, the case expects {len(case.expect)}")
    by_id: dict[str, list[AuditRecord]] = {}
    for record in audit:
        by_id.setdefault(record.request_id, []).append(record)
    for reply, expectation in zip(replies, case.expect, strict=False):
        if not isinstance(expectation, Closed):
            problems += _answer(reply, expectation, case, calls, by_id)

    # The forbidden tool never ran, nor anything in a session the attacker does not own.
    for forbid in kit.forbids:
        for call in calls:
            if forbid.matches(call):
                problems.append(f"BREAKTHROUGH: {forbid} ran: {_call(call)}")
    # Nothing reached a server or a router with a request id or client address the attacker chose.
    for call in calls:
        values = [*call.forwarding.get("x-request-id", []), *call.forwarding.get("x-forwarded-for", [])]
        if any(MARKER_REQUEST_ID in value or MARKER_ADDRESS in value for value in values):
            problems.append(
                f"BREAKTHROUGH: a server received the attacker's forwarding headers: {_call(call)}"
            )
        if (
            call.request_id is not None
            and not issued_by_gateway(call.request_id)
            and call.request_id not in listed
        ):
            problems.append(
                f"a server ran a message whose request id the gateway did not issue: {_call(call)}"
            )
    for record in audit:
        if MARKER_REQUEST_ID in record.request_id or record.client == MARKER_ADDRESS:
            problems.append(
                f"BREAKTHROUGH: a router took the attacker's forwarding headers: {_record(record)}"
            )
    return problems


def _answer(
    reply: Reply,
    expectation: Expectation,
    case: Case,
    calls: list[ServerCall],
    by_id: Mapping[str, list[AuditRecord]],
) -> list[str]:
    problems: list[str] = []
    rid = reply.request_id
    records = by_id.get(rid or "", [])
    assert not isinstance(expectation, Closed)
    wanted = 200 if isinstance(expectation, Served) else expectation.status
    if reply.status != wanted:
        problems.append(f"answered {reply.status}, expected {wanted}: {reply.summary()}")
    if isinstance(expectation, Refused):
        if expectation.code is not None:
            problems += _rpc_error(reply, expectation.code)
        if expectation.by == "router":
            refused = [r for r in records if r.outcome == "refused" and r.status == reply.status]
            if len(refused) != 1 or (
                expectation.code is not None and refused[0].rpc_code != expectation.code
            ):
                problems.append(f"no audit record of the router's refusal for {rid}: {records}")
        elif records:
            problems.append(f"HAProxy was to answer, but a router audited {rid}: {records}")
        return problems
    if isinstance(expectation, Answered):
        if records:
            problems.append(f"HAProxy was to answer, but a router audited {rid}: {records}")
        return problems
    message = reply.message()
    if isinstance(expectation, Served):
        server = expectation.server or case.target.server
        result = message.get("result") if isinstance(message, dict) else None
        if not isinstance(result, dict):
            problems.append(f"no tool result in the answer: {reply.summary()}")
        elif result.get("isError") is True and not expectation.tool_error:
            problems.append(f"the tool failed: {reply.summary()}")
        runs = [c for c in calls if c.server == server and c.tool == expectation.tool]
        if len(runs) != 1 or runs[0].request_id != rid:
            problems.append(f"{expectation.tool} ran {len(runs)} times on {server} (request {rid}): {runs}")
        if (
            len(records) != 1
            or records[0].tool != expectation.tool
            or records[0].outcome not in ("ok", "tool_error")
        ):
            problems.append(f"the audit record for {rid} does not name {expectation.tool} as run: {records}")
        return problems
    assert isinstance(expectation, Forwarded)
    is_error = isinstance(message, dict) and "error" in message
    if not isinstance(message, dict) or is_error != expectation.rpc_error:
        problems.append(
            f"expected the server's {'error' if expectation.rpc_error else 'result'}: {reply.summary()}"
        )
    if len(records) != 1 or records[0].outcome == "refused" or records[0].tool is not None:
        problems.append(f"the audit record for {rid} is not a forwarded message naming no tool: {records}")
    if not any(c.request_id == rid for c in calls):
        problems.append(f"no server recorded the forwarded message {rid}")
    return problems


def _rpc_error(reply: Reply, code: int) -> list[str]:
    message = reply.message()
    if reply.content_type != "application/json" or not isinstance(message, dict):
        return [f"the answer is not a JSON-RPC message: {reply.summary()}"]
    error = message.get("error")
    if (
        message.get("jsonrpc") != "2.0"
        or "id" not in message
        or not isinstance(error, dict)
        or not isinstance(error.get("message"), str)
        or error.get("code") != code
    ):
        return [f"expected a JSON-RPC error {code}: {reply.summary()}"]
    return []


def probe_directly(kit: Kit, post: Post) -> bool:
    """The case's message and headers straight to the target's first replica (the server's own session
    in the legacy era): did the server run the forbidden tool?"""
    era = kit.target.era
    headers = kit.headers(token=None, session=None, era=era, extra=post.headers, drop=post.drop)
    named = {name.lower() for name, _ in post.headers} | {name.lower() for name in post.drop}
    if era == "legacy" and "mcp-protocol-version" not in named:
        headers.append(("MCP-Protocol-Version", LEGACY))
    session = kit.direct_session() if era == "legacy" else None
    request_id, _ = kit.direct(kit.fill(post.body), headers, session)
    time.sleep(DIRECT_SETTLE_SECONDS)
    return any(c.request_id == request_id and c.tool == kit.target.forbidden for c in kit.stack.calls())
