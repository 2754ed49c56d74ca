"""Playing one case: send it, wait for the records, and hold what came back against what the servers
themselves recorded and against the routers' audit records (joined by request id)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
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
from tests.e2e.attacks.kit import (
    DEFAULT,
    LEGACY,
    MARKER_ADDRESS,
    MARKER_REQUEST_ID,
    Kit,
    issued_by_gateway,
)
from tests.e2e.attacks.stack import Stack
from tests.e2e.attacks.wire import Exchange, Reply

AUDIT_WAIT_SECONDS = 3.0
DIRECT_SETTLE_SECONDS = 0.3


@dataclass
class Outcome:
    """What one case came to: problems (empty when it held), and everything needed to report it."""

    case: Case
    subject: str
    problems: list[str] = field(default_factory=list)
    breakthrough: bool = False
    """A forbidden record appeared: the trick got through."""
    exchanges: list[tuple[str, Exchange]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    direct: bool | None = None
    """Straight to the server, did the same message run the forbidden tool."""
    seconds: float = 0.0

    def report(self) -> str:
        lines = [f"case {self.case.name!r} ({self.case.category}), caller {self.subject}:"]
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        for label, exchange in self.exchanges:
            lines.append(f"  [{label}] " + exchange.describe().replace("\n", "\n    "))
        lines.append("  servers recorded:")
        lines += [f"    {call}" for call in self.calls] or ["    (nothing)"]
        lines.append("  routers audited:")
        lines += [f"    {record}" for record in self.audit] or ["    (nothing)"]
        return "\n".join(lines)


class Ledger:
    """Every record already seen, so a case's window is exactly what it caused."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.calls_seen = _counts_calls(stack)
        self.audit_seen = _counts_audit(stack)

    def new(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        calls, self.calls_seen = _tail_calls(self.stack, self.calls_seen)
        audit, self.audit_seen = _tail_audit(self.stack, self.audit_seen)
        return calls, audit


def _counts_calls(stack: Stack) -> dict[str, int]:
    return {r.label: len(r.calls()) for rs in stack.replicas.values() for r in rs}


def _counts_audit(stack: Stack) -> dict[str, int]:
    return {r.address: len(r.records()) for r in stack.routers}


def _tail_calls(stack: Stack, seen: Mapping[str, int]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    out: list[dict[str, Any]] = []
    counts = {}
    for replicas in stack.replicas.values():
        for replica in replicas:
            calls = replica.calls()
            out += calls[seen.get(replica.label, 0) :]
            counts[replica.label] = len(calls)
    return out, counts


def _tail_audit(stack: Stack, seen: Mapping[str, int]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    out: list[dict[str, Any]] = []
    counts = {}
    for router in stack.routers:
        records = router.records()
        out += records[seen.get(router.address, 0) :]
        counts[router.address] = len(records)
    return out, counts


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


def _wait_for_audit(stack: Stack, replies: Sequence[Reply], expect: Sequence[Expectation]) -> None:
    wanted = {
        reply.request_id
        for reply, expectation in zip(replies, expect, strict=False)
        if reply.request_id and _answered_by_router(expectation)
    }
    deadline = time.monotonic() + AUDIT_WAIT_SECONDS
    while wanted and time.monotonic() < deadline:
        present = {record["request_id"] for record in stack.audit()}
        if wanted <= present:
            return
        time.sleep(0.05)


def play(stack: Stack, case: Case, subject: str) -> Outcome:
    started = time.monotonic()
    outcome = Outcome(case, subject)
    kit = Kit(stack, case.target, subject)
    # A control runs the tool the target's caller may not: its own caller may.
    served = {(e.server or case.target.server, e.tool) for e in case.expect if isinstance(e, Served)}
    kit.forbids = [f for f in kit.forbids if (f.server, f.tool) not in served]
    ledger = Ledger(stack)
    try:
        attack = _attack(kit, case)
    except AssertionError as error:
        outcome.problems.append(f"the case could not be played: {error}")
        outcome.exchanges = kit.exchanges
        return outcome
    _wait_for_audit(stack, attack.replies, case.expect)
    time.sleep(case.settle)
    calls, audit = ledger.new()
    # Records of the case's own preparation (sessions opened, notes added) are not part of the attack.
    setup = {
        reply.request_id
        for label, exchange in kit.exchanges
        if label != "attack"
        for reply in exchange.replies
        if reply.request_id
    }
    outcome.calls = [c for c in calls if c.get("request_id") not in setup]
    outcome.audit = [r for r in audit if r.get("request_id") not in setup]
    outcome.problems += judge(case, kit, attack, outcome.calls, outcome.audit)
    outcome.breakthrough = any(p.startswith("BREAKTHROUGH") for p in outcome.problems)
    for check in kit.checks:
        problem = check()
        if problem:
            outcome.problems.append(problem)
    if isinstance(case.attack, Post) and case.attack.direct is not None:
        outcome.direct = probe_directly(kit, case.attack)
        if outcome.direct != case.attack.direct:
            said = "runs" if case.attack.direct else "is refused by the server"
            saw = "ran" if outcome.direct else "did not run"
            outcome.problems.append(
                f"straight to {case.target.server} the table says the message {said}, but the tool {saw}"
            )
    outcome.exchanges = kit.exchanges
    outcome.seconds = time.monotonic() - started
    return outcome


def judge(
    case: Case, kit: Kit, attack: Exchange, calls: list[dict[str, Any]], audit: list[dict[str, Any]]
) -> list[str]:
    problems: list[str] = []
    replies = attack.replies
    if any(isinstance(e, Closed) for e in case.expect):
        if replies or not attack.closed:
            problems.append(f"expected no answer and a closed connection: {attack.describe()}")
    elif not replies and attack.closed and all(isinstance(e, Refused) and e.or_reset for e in case.expect):
        pass
    elif len(replies) != len(case.expect):
        problems.append(f"{len(replies)} answers on the connection, the case expects {len(case.expect)}")
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in audit:
        by_id.setdefault(record["request_id"], []).append(record)

    for reply, expectation in zip(replies, case.expect, strict=False):
        if isinstance(expectation, Closed):
            continue
        problems += _answer(reply, expectation, case, calls, by_id)

    # The forbidden tool never ran, nor anything in a session the attacker does not own.
    for forbid in kit.forbids:
        for call in calls:
            if forbid.matches(call):
                problems.append(f"BREAKTHROUGH: {forbid} ran: {call}")
    # Nothing reached a server or a router carrying a request id or address the attacker chose.
    for call in calls:
        if call.get("request_id") == MARKER_REQUEST_ID or call.get("forwarded_for") == MARKER_ADDRESS:
            problems.append(f"BREAKTHROUGH: a server received the attacker's own forwarding headers: {call}")
    for record in audit:
        if record.get("request_id") == MARKER_REQUEST_ID or record.get("client") == MARKER_ADDRESS:
            problems.append(f"BREAKTHROUGH: a router took the attacker's forwarding headers: {record}")

    # The join: every message a server ran has exactly one audit record naming the same method and tool.
    for call in calls:
        rid = call.get("request_id")
        if rid is None:
            if not (call["server"] == "everything" and str(call["method"]).startswith("notifications/")):
                problems.append(f"a server ran a message with no request id: {call}")
            continue
        if not issued_by_gateway(rid):
            problems.append(f"a server ran a message whose request id the gateway did not issue: {call}")
        records = by_id.get(rid, [])
        if len(records) != 1:
            problems.append(f"{len(records)} audit records for {rid}, which {call['server']} ran: {call}")
            continue
        record = records[0]
        if (record["method"], record["tool"], record["server"]) != (
            call["method"],
            call["tool"],
            call["server"],
        ):
            problems.append(
                f"the audit record says {record['server']} ran {record['method']} {record['tool']}, "
                f"the server recorded {call['server']} {call['method']} {call['tool']} (request {rid})"
            )
    # And every audit record claiming a tool ran is matched by the server's own record of it.
    ran = {(c.get("request_id"), c["tool"]) for c in calls}
    for record in audit:
        claims_run = record.get("tool") and record.get("outcome") in ("ok", "tool_error")
        if claims_run and (record["request_id"], record["tool"]) not in ran:
            problems.append(f"the audit says {record['tool']} ran, no server recorded it: {record}")
    return problems


def _answer(
    reply: Reply,
    expectation: Expectation,
    case: Case,
    calls: list[dict[str, Any]],
    by_id: Mapping[str, list[dict[str, Any]]],
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
            refused = [r for r in records if r["outcome"] == "refused" and r["status"] == reply.status]
            if len(refused) != 1 or (
                expectation.code is not None and refused[0]["rpc_code"] != expectation.code
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
        runs = [c for c in calls if c["server"] == server and c["tool"] == expectation.tool]
        if len(runs) != 1 or runs[0].get("request_id") != rid:
            problems.append(f"{expectation.tool} ran {len(runs)} times on {server} (request {rid}): {runs}")
        if (
            len(records) != 1
            or records[0]["tool"] != expectation.tool
            or records[0]["outcome"] not in ("ok", "tool_error")
        ):
            problems.append(f"the audit record for {rid} does not name {expectation.tool} as run: {records}")
        return problems
    assert isinstance(expectation, Forwarded)
    is_error = isinstance(message, dict) and "error" in message
    if not isinstance(message, dict) or is_error != expectation.rpc_error:
        problems.append(
            f"expected the server's {'error' if expectation.rpc_error else 'result'}: {reply.summary()}"
        )
    if len(records) != 1 or records[0]["outcome"] == "refused" or records[0]["tool"] is not None:
        problems.append(f"the audit record for {rid} is not a forwarded message naming no tool: {records}")
    if not any(c.get("request_id") == rid for c in calls):
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
    return any(
        c.get("request_id") == request_id and c.get("tool") == kit.target.forbidden for c in kit.stack.calls()
    )
