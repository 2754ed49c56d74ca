"""The router's own requests to servers (its listings) are accounted for: each carries an X-Request-ID of
the router's own form (`listing-<uuid4>`), exactly once, and no client's forwarding headers, and each has
an audit record (`"event": "listing"`) naming the server, the pod, the method, the status and the outcome,
against what a real server recorded it ran (the notes reference server's call log)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcpfleet.router.config import RouterConfig
from mcpfleet.router.listings import LISTING_ID_PREFIX, Listings
from mcpfleet.router.local import free_port
from mcpfleet.router.observe import Metrics
from mcpfleet.router.upstreams import Endpoints
from tests.router.test_listings import FAST, WAIT_SECONDS, changing, config, entry, running

LISTING_ID = re.compile(r"^listing-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
NOTES = ["add_note", "list_notes", "search_notes", "delete_note"]


def listed_with_audit(
    router: RouterConfig, scenario: Callable[[Listings], Awaitable[None]]
) -> list[dict[str, Any]]:
    """Run the listings over router until scenario returns, then stop them; every audit line written."""
    lines: list[bytes] = []

    async def main() -> None:
        endpoints = {name: Endpoints(server.upstream) for name, server in router.servers.items()}
        listings = Listings(router, endpoints, Metrics(), lines.append, **FAST)
        await listings.start()
        try:
            assert await listings.wait_listed(WAIT_SECONDS), "the first round did not end"
            await scenario(listings)
        finally:
            await listings.stop()

    asyncio.run(main())
    records = []
    for line in lines:
        assert line.endswith(b"\n") and line.count(b"\n") == 1, line
        records.append(json.loads(line))
    return records


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def test_every_message_a_server_ran_for_a_listing_has_the_routers_own_id_and_its_record(
    tmp_path: Path,
) -> None:
    log = tmp_path / "notes-calls.jsonl"
    with running(
        "examples.servers.notes", "--call-log", str(log), "--replica-id", "n1", log_dir=tmp_path
    ) as notes:
        router = config({"notes": entry("notes", notes.address, NOTES)})

        async def listed(listings: Listings) -> None:
            assert listings.get("notes") is not None
            await listings.refresh("notes")  # a second listing, on the held connection

        records = listed_with_audit(router, listed)
        ran = calls(log)
    assert ran, "the server ran nothing"
    assert {record["event"] for record in records} == {"listing"}
    by_id = {record["request_id"]: record for record in records}
    assert len(by_id) == len(records), "a request id was used twice"
    for call in ran:
        ids = call["forwarding"].get("x-request-id", [])
        assert len(ids) == 1 and LISTING_ID.match(ids[0]), call
        assert "x-forwarded-for" not in call["forwarding"] and "forwarded" not in call["forwarding"], call
        assert "authorization" not in call["headers"] and not call["repeated"], call
        record = by_id[ids[0]]
        assert (record["server"], record["pod"], record["method"]) == ("notes", notes.address, call["method"])
        assert (record["status"], record["outcome"]) == (200, "ok"), record
    # Two listings of a modern server: discover, then every list it offers, twice; never a call.
    methods = [call["method"] for call in ran]
    assert methods.count("tools/list") == 2 and methods.count("server/discover") >= 1, methods
    lists = {"tools/list", "resources/list", "resources/templates/list", "prompts/list"}
    assert set(methods) <= {"server/discover", "subscriptions/listen", *lists}, methods
    assert all(LISTING_ID.match(record["request_id"]) for record in records)
    assert all(
        isinstance(record["latency_ms"], float | int) and record["time"].endswith("Z") for record in records
    )


def test_a_legacy_listing_records_its_handshake_stream_and_session_end(tmp_path: Path) -> None:
    with changing(tmp_path, "--legacy-only") as server:
        router = config({"old": entry("old", server.address, ["echo"])})

        async def held(listings: Listings) -> None:
            assert listings.get("old") is not None and listings.get("old").era == "legacy"  # type: ignore[union-attr]

        records = listed_with_audit(router, held)
    methods = [record["method"] for record in records]
    assert records and all(
        record["server"] == "old" and record["pod"] == server.address for record in records
    )
    # Refused discover (the older era), initialize, initialized, the list, the session's GET stream, and
    # the session's DELETE as the listings stop.
    for method in ("server/discover", "initialize", "notifications/initialized", "tools/list", "GET"):
        assert method in methods, methods
    ok = {record["method"] for record in records if record["outcome"] == "ok"}
    assert {"initialize", "notifications/initialized", "tools/list", "GET"} <= ok, records
    stream = next(record for record in records if record["method"] == "GET")
    assert stream["status"] == 200


def test_a_server_that_cannot_be_reached_gets_a_record_of_the_failed_request(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    router = config({"gone": entry("gone", address, ["echo"])})

    async def down(listings: Listings) -> None:
        assert listings.get("gone") is None

    records = listed_with_audit(router, down)
    assert records, "no record of the attempt"
    first = records[0]
    assert (first["server"], first["pod"], first["status"], first["outcome"]) == (
        "gone",
        address,
        0,
        "upstream_error",
    )
    assert first["request_id"].startswith(LISTING_ID_PREFIX)
