"""The audit join of tests/e2e/audit.py finds each disagreement it is there to find: the end-to-end tests'
audit acceptance is only as strong as these rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.e2e.audit import (
    AuditRecord,
    ForwardRecord,
    ListingRecord,
    ServerCall,
    audit_lines,
    check,
    forward_lines,
    json_lines,
)

CLIENT = "127.0.0.1"


def record(request_id: str, tool: str | None = "add_note", **changes: Any) -> AuditRecord:
    base = AuditRecord(
        router="mcp-router-0",
        request_id=request_id,
        client=CLIENT,
        caller="alice",
        server="notes",
        method="tools/call",
        tool=tool,
        outcome="ok",
        status=200,
        rpc_code=None,
        session=None,
        era="legacy",
        end=0.0,
        latency_ms=1.0,
    )
    return replace(base, **changes)


def call(request_id: str, tool: str | None = "add_note", **changes: Any) -> ServerCall:
    base = ServerCall(
        server="notes",
        replica="notes-1",
        method="tools/call",
        tool=tool,
        forwarding={
            "x-request-id": [request_id],
            "x-forwarded-for": [CLIENT],
            "x-forwarded-proto": ["https"],
        },
        headers=frozenset({"host", "content-type", "x-request-id", "x-forwarded-for", "x-forwarded-proto"}),
        repeated=frozenset(),
        session=None,
    )
    return replace(base, **changes)


def forward(request_id: str, tool: str | None = "add_note", **changes: Any) -> ForwardRecord:
    base = ForwardRecord(
        router="mcp-router-0",
        request_id=request_id,
        caller="alice",
        server="notes",
        method="tools/call",
        tool=tool,
        session=None,
        era="legacy",
        time=0.0,
    )
    return replace(base, **changes)


def entry(request_id: str, router: str = "router1", status: int = 200) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "router": router,
        "status": status,
        "client": CLIENT,
        "termination": "--",
    }


def problems(records: list[AuditRecord], calls: list[ServerCall], entries: list[dict[str, Any]]) -> list[str]:
    return check(records, calls, entries, recorded={"notes"}).problems


def test_agreeing_records_join_without_problems() -> None:
    audit = check([record("a")], [call("a")], [entry("a")], recorded={"notes"})
    assert audit.problems == [] and len(audit.pairs) == 1
    assert audit.tools_run() == {"add_note": 1}


def test_a_record_naming_another_tool_than_the_server_ran() -> None:
    found = problems([record("a", tool="add_note")], [call("a", tool="delete_note")], [entry("a")])
    assert len(found) == 1 and "delete_note" in found[0] and "add_note" in found[0]


def test_another_method_or_server() -> None:
    assert problems([record("a", method="ping", tool=None)], [call("a")], [entry("a")])
    assert problems([record("a", server="text")], [call("a")], [entry("a")])


def test_a_message_run_with_no_audit_record_unless_excused() -> None:
    assert "no router wrote an audit record" in problems([], [call("a")], [entry("a")])[0]
    audit = check([], [call("a")], [entry("a", status=502)], recorded={"notes"}, excused={"a"})
    assert audit.problems == [] and len(audit.excused) == 1


def test_an_accepted_notification_no_replica_ran_unless_excused() -> None:
    accepted = record("a", tool=None, method="notifications/initialized", status=202)
    assert "no replica ran it" in problems([accepted], [], [entry("a", status=202)])[0]
    excused = check([accepted], [], [entry("a", status=202)], recorded={"notes"}, excused={"a"})
    assert excused.problems == []


def test_a_refused_message_that_ran_anyway() -> None:
    refused = record("a", tool="delete_note", outcome="refused", status=403, rpc_code=-32003)
    found = problems([refused], [call("a", tool="delete_note")], [entry("a", status=403)])
    assert any("refused" in problem for problem in found)


def test_a_message_the_gateway_answered_itself_that_ran() -> None:
    found = problems([], [call("a")], [entry("a", router="<NOSRV>", status=401)])
    assert any("answered request a itself" in problem for problem in found)


def test_a_success_no_replica_ran() -> None:
    found = problems([record("a")], [], [entry("a")])
    assert found and "no replica ran it" in found[0]
    # Streams, session ends and servers without a call log are not messages a call log holds.
    assert problems([record("b", method="GET", tool=None)], [], [entry("b")]) == []
    assert problems([record("c", server="everything")], [], [entry("c")]) == []


def test_a_request_sent_to_a_router_that_no_router_audited() -> None:
    found = problems([], [], [entry("a", status=502)])
    assert found and "no router wrote an audit record" in found[0]
    assert check([], [], [entry("a", status=502)], excused={"a"}).problems == []


def test_forwarding_headers_other_than_the_gateways() -> None:
    two_ids = call("a", forwarding={"x-request-id": ["a", "client-id"], "x-forwarded-for": [CLIENT]})
    assert any("X-Request-ID" in p for p in problems([record("a")], [two_ids], [entry("a")]))
    two_addresses = call("a", forwarding={"x-request-id": ["a"], "x-forwarded-for": ["203.0.113.9", CLIENT]})
    assert any("X-Forwarded-For" in p for p in problems([record("a")], [two_addresses], [entry("a")]))
    other_address = call("a", forwarding={"x-request-id": ["a"], "x-forwarded-for": ["203.0.113.9"]})
    assert any("the gateway saw" in p for p in problems([record("a")], [other_address], [entry("a")]))
    forwarded = call(
        "a", forwarding={"x-request-id": ["a"], "x-forwarded-for": [CLIENT], "forwarded": ["for=x"]}
    )
    assert any("forwarded" in p for p in problems([record("a")], [forwarded], [entry("a")]))
    token = call("a", headers=frozenset({"authorization", "x-request-id"}))
    assert any("Authorization" in p for p in problems([record("a")], [token], [entry("a")]))
    repeated = call("a", repeated=frozenset({"mcp-session-id"}))
    assert any("repeated" in p for p in problems([record("a")], [repeated], [entry("a")]))


def test_an_id_no_gateway_logged_and_an_id_run_twice() -> None:
    assert any("no gateway logged" in p for p in problems([record("a")], [call("a")], [entry("b")]))
    twice = problems([record("a")], [call("a"), call("a", replica="notes-2")], [entry("a")])
    assert any("ran 2 times" in p for p in twice)


def test_json_lines_reads_complete_json_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "router.log"
    log.write_text('WARNING something\n{"a": 1}\n{"b": 2}\n{"c": ', encoding="utf-8")
    assert json_lines(log) == ([{"a": 1}, {"b": 2}], 3)
    assert json_lines(log, 2) == ([{"b": 2}], 3)
    assert json_lines(tmp_path / "absent.log") == ([], 0)


def forward_problems(
    forwards: list[ForwardRecord],
    records: list[AuditRecord],
    calls: list[ServerCall],
    excused: frozenset[str] = frozenset(),
) -> list[str]:
    entries = [entry(r) for r in {c.request_id or "" for c in calls} | {r.request_id for r in records}]
    return check(records, calls, entries, recorded={"notes"}, excused=excused, forwards=forwards).problems


def test_forward_and_full_records_that_agree_join_without_problems() -> None:
    assert forward_problems([forward("a")], [record("a")], [call("a")]) == []


def test_a_message_run_without_a_forward_record_even_when_excused() -> None:
    found = forward_problems([], [record("a")], [call("a")], excused=frozenset({"a"}))
    assert any("no router wrote a forward record" in p for p in found)


def test_a_forward_record_naming_another_tool_than_the_server_ran() -> None:
    found = forward_problems([forward("a", tool="list_notes")], [], [call("a")], excused=frozenset({"a"}))
    assert len(found) == 1 and "forward record" in found[0] and "list_notes" in found[0]


def test_a_forward_record_without_its_full_record_only_when_excused() -> None:
    # In flight on a router replica that was killed: the forward record alone.
    assert forward_problems([forward("a")], [], [call("a")], excused=frozenset({"a"})) == []
    found = forward_problems([forward("a")], [], [call("a")])
    assert any("no router wrote an audit record" in p for p in found)


def test_forward_and_full_records_that_disagree() -> None:
    assert forward_problems([forward("a", caller="mallory")], [record("a")], [call("a")])
    assert forward_problems([forward("a", router="mcp-router-1")], [record("a")], [call("a")])
    twice = forward_problems([forward("a"), forward("a")], [record("a")], [call("a")])
    assert any("2 forward records" in p for p in twice)


def test_an_answered_message_the_router_never_wrote_a_forward_record_of() -> None:
    found = forward_problems([], [record("a", server="everything")], [])
    assert found and "no forward record" in found[0]
    # Its own refusals were never forwarded; a stream may have been forwarded before the stretch began.
    refused = record("b", outcome="refused", status=403, rpc_code=-32003)
    assert forward_problems([], [refused, record("c", method="GET", tool=None)], []) == []


def test_the_stream_of_lines_splits_into_forward_and_full_records() -> None:
    lines: list[dict[str, Any]] = [
        {"event": "forward", "time": "2026-01-01T00:00:00.000Z", "request_id": "a", "caller": "alice",
         "server": "notes", "method": "tools/call", "tool": "add_note", "session": None, "era": "legacy"},
        {"event": "message", "time": "2026-01-01T00:00:00.002Z", "request_id": "a", "client": CLIENT,
         "caller": "alice", "server": "notes", "method": "tools/call", "tool": "add_note", "outcome": "ok",
         "status": 200, "rpc_code": None, "latency_ms": 2.0, "session": None, "era": "legacy"},
        {"level": "WARNING", "message": "something else"},
    ]  # fmt: skip
    (full,) = audit_lines("mcp-router-0", lines)
    (ahead,) = forward_lines("mcp-router-0", lines)
    assert (full.request_id, full.tool, full.outcome) == ("a", "add_note", "ok")
    assert (ahead.request_id, ahead.tool, ahead.caller) == ("a", "add_note", "alice")
    assert ahead.time < full.end


# The router's own requests: its listings, and its sessions for fleet endpoint calls


LISTING_ID = "listing-0b0e5f0a-6f1e-4c43-9a55-0f6c2b1f4c11"


def listing(request_id: str = LISTING_ID, **changes: Any) -> ListingRecord:
    base = ListingRecord(
        router="mcp-router-0",
        request_id=request_id,
        server="notes",
        pod="127.0.0.31:8080",
        method="tools/list",
        status=200,
        outcome="ok",
        time=0.0,
    )
    return replace(base, **changes)


def listing_call(request_id: str = LISTING_ID, **changes: Any) -> ServerCall:
    fields: dict[str, Any] = {
        "tool": None,
        "method": "tools/list",
        "forwarding": {"x-request-id": [request_id]},
        "headers": frozenset({"host", "content-type", "x-request-id"}),
        **changes,
    }
    return call(request_id, **fields)


def listing_problems(calls: list[ServerCall], listings: list[ListingRecord], **options: Any) -> list[str]:
    return check(
        [], calls, options.pop("entries", []), recorded={"notes"}, forwards=[], listings=listings
    ).problems


def test_a_listing_request_with_its_record_joins_without_problems() -> None:
    audit = check([], [listing_call()], [], recorded={"notes"}, forwards=[], listings=[listing()])
    assert audit.problems == [] and len(audit.listed) == 1 and audit.pairs == []


def test_a_listing_request_without_its_record_or_with_another_method_or_server() -> None:
    assert any("no router wrote a listing record" in p for p in listing_problems([listing_call()], []))
    assert any(
        "listing record" in p for p in listing_problems([listing_call()], [listing(method="prompts/list")])
    )
    assert any("listing record" in p for p in listing_problems([listing_call()], [listing(server="units")]))


def test_a_listing_request_that_carries_a_client_address_or_a_token() -> None:
    addressed = listing_call(forwarding={"x-request-id": [LISTING_ID], "x-forwarded-for": [CLIENT]})
    assert any("X-Forwarded-For" in p for p in listing_problems([addressed], [listing()]))
    token = listing_call(headers=frozenset({"authorization", "x-request-id"}))
    assert any("Authorization" in p for p in listing_problems([token], [listing()]))


def test_a_tool_call_under_a_listing_id_is_a_fault_even_with_a_matching_record() -> None:
    called = listing_call(method="tools/call", tool="delete_note")
    found = listing_problems([called], [listing(method="tools/call")])
    assert any("a listing never sends that" in p for p in found)


def test_a_listing_id_that_went_through_the_gateway_or_ran_twice() -> None:
    found = listing_problems([listing_call()], [listing()], entries=[entry(LISTING_ID)])
    assert any("also a client's request" in p for p in found)
    assert any("ran 2 times" in p for p in listing_problems([listing_call(), listing_call()], [listing()]))
    assert any("2 listing records" in p for p in listing_problems([listing_call()], [listing(), listing()]))


def test_the_routers_session_for_a_fleet_call_is_accounted_for_by_the_calls_forward_record() -> None:
    handshake = [
        call("a", tool=None, method="initialize"),
        call("a", tool=None, method="notifications/initialized"),
    ]
    fleet_call = forward("a", endpoint="fleet")
    audit = check(
        [record("a", endpoint="fleet")],
        [*handshake, call("a")],
        [entry("a")],
        recorded={"notes"},
        forwards=[fleet_call],
    )
    assert audit.problems == [] and len(audit.handshakes) == 2 and len(audit.pairs) == 1
    # Through a server's own route the router opens no session of its own: the same calls are faults.
    assert forward_problems([forward("a", endpoint="server")], [record("a")], [*handshake, call("a")])
    # Nor on another server than the call's, nor more than twice for one call.
    elsewhere = [replace(c, server="units") for c in handshake]
    assert forward_problems([fleet_call], [record("a")], [*elsewhere, call("a")])
    thrice = [call("a", tool=None, method="initialize")] * 3
    assert any("3 times" in p for p in forward_problems([fleet_call], [record("a")], [*thrice, call("a")]))


def test_what_the_fleet_endpoint_answers_itself_needs_no_forward_record() -> None:
    own = record("a", tool=None, server="", method="tools/list", endpoint="fleet")
    assert forward_problems([], [own], []) == []
    # A server's answer, on either endpoint, still needs one.
    for endpoint in ("fleet", "server"):
        forwarded = record("b", endpoint=endpoint)
        assert any("no forward record" in p for p in forward_problems([], [forwarded], [])), endpoint
