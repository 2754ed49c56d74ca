"""The fleet endpoint's checks, on listings made here: names split by the contract, pins compared over the
server's own name, the tools a caller's roles may call expected, and each kind of wrong listing named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from mcpfleet.catalog.toolhash import tool_hash
from mcpfleet.fleet import Fleet
from mcpfleet.verify.compare import ListedTool
from mcpfleet.verify.run import FleetReport, plan
from mcpfleet.verify.tokens import Tokens
from mcpfleet.verify.unified import caller_roles, check, expected_pages, pin_hash, split_name
from tests.conftest import minimal_server
from tests.dev.test_launch import fleet_of

# The roles are read without checking the signature (the gateway checks it): any key signs.
KEY = "a key of thirty-two bytes at least"


def sign(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, KEY, algorithm="HS256")


SCHEMA: dict[str, Any] = {"type": "object", "properties": {"q": {"type": "string"}}}
OTHER_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"q": {"type": "integer"}}}


def pinned(name: str, description: str = "") -> dict[str, Any]:
    return {"name": name, "description": description, "sha256": tool_hash(name, description, SCHEMA)}


def served(listed: str, description: str = "", schema: dict[str, Any] = SCHEMA) -> ListedTool:
    return ListedTool(listed, description, schema)


@pytest.fixture
def fleet(catalog_dir: Callable[..., Path]) -> Fleet:
    """docs: read by every role, delete by admins only; wiki: one pinned tool, one declared unpinned."""
    docs = minimal_server(
        "docs",
        tools=[pinned("read", "Read a page."), pinned("delete", "Delete a page.")],
        access=[{"roles": ["reader", "admin"], "tools": ["read"]}, {"roles": ["admin"], "tools": ["*"]}],
    )
    wiki = minimal_server(
        "wiki",
        tools=[pinned("search_pages"), {"name": "draft"}],
        access=[{"roles": ["reader", "admin"], "tools": ["*"]}],
    )
    return fleet_of(catalog_dir(docs=docs, wiki=wiki))


def honest(roles: str) -> list[ListedTool]:
    listed = [served("docs__read", "Read a page."), served("wiki__search_pages"), served("wiki__draft")]
    if "admin" in roles:
        listed.append(served("docs__delete", "Delete a page."))
    return listed


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        ("notes__add_note", ("notes", "add_note")),
        # The first `__` splits: the server's own name keeps whatever it holds.
        ("notes__add__note", ("notes", "add__note")),
        ("my-server__x", ("my-server", "x")),
        ("add_note", None),
        ("__add_note", None),
        ("notes__", None),
        ("Notes__add", None),
        ("-notes__add", None),
        ("no_tes__add", None),
    ],
)
def test_names_split_at_the_first_separator(listed: str, expected: tuple[str, str] | None) -> None:
    assert split_name(listed) == expected


def test_roles_read_from_the_token_as_the_router_reads_them() -> None:
    assert caller_roles(sign({"roles": "a  b"}), "roles") == frozenset({"a", "b"})
    assert caller_roles(sign({"groups": ["a", "b"]}), "groups") == frozenset({"a", "b"})
    # A token naming no roles may call nothing: every expectation is "not listed".
    assert caller_roles(sign({"sub": "x"}), "roles") == frozenset()
    assert caller_roles(sign({"roles": 3}), "roles") is None
    assert caller_roles("not-a-jwt", "roles") is None
    assert caller_roles(None, "roles") is None


@pytest.mark.parametrize("roles", ["reader", "admin"])
def test_an_honest_listing_passes_for_each_caller(fleet: Fleet, roles: str) -> None:
    found = check(fleet, honest(roles), frozenset({roles}), "serve")
    assert found.problems == ()
    assert found.withheld == ()
    assert found.unpinned == ("wiki__draft",)
    assert dict(found.servers) == {"docs": 2 if roles == "admin" else 1, "wiki": 2}


def test_a_drifted_tool_served_is_named_with_both_hashes(fleet: Fleet) -> None:
    listed = [*honest("reader")[1:], served("docs__read", "Read a page.", OTHER_SCHEMA)]
    found = check(fleet, listed, frozenset({"reader"}), "serve")
    assert found.problems == ("drift",)
    (change,) = found.changed
    assert change.name == "docs__read" and change.parts == ("inputSchema",)
    # The pin hashes the server's own name: the endpoint's prefix is no part of the definition.
    assert change.pinned == tool_hash("read", "Read a page.", SCHEMA)
    assert change.listed == tool_hash("read", "Read a page.", OTHER_SCHEMA)
    assert pin_hash(listed[-1]) == change.listed


def test_tools_a_caller_may_call_but_not_listed_are_withheld(fleet: Fleet) -> None:
    listed = [served("wiki__draft")]
    found = check(fleet, listed, frozenset({"reader"}), "serve")
    assert found.problems == ("withheld",)
    assert [(item.name, item.pinned) for item in found.withheld or ()] == [
        ("docs__read", tool_hash("read", "Read a page.", SCHEMA)),
        ("wiki__search_pages", tool_hash("search_pages", "", SCHEMA)),
    ]
    # docs lists nothing at all: down, not listed yet, or every tool withheld.
    assert found.silent_servers == ("docs",)


def test_unpinned_tools_follow_the_environment(fleet: Fleet) -> None:
    without_draft = [tool for tool in honest("reader") if tool.name != "wiki__draft"]
    # Withheld by the environment: not expected, and a problem when listed.
    assert check(fleet, without_draft, frozenset({"reader"}), "withhold").problems == ()
    assert check(fleet, honest("reader"), frozenset({"reader"}), "withhold").problems == ("unpinned",)
    # Served by the environment: expected.
    assert check(fleet, without_draft, frozenset({"reader"}), "serve").problems == ("withheld",)


def test_what_a_caller_must_never_see(fleet: Fleet) -> None:
    listed = [
        *honest("reader"),
        served("docs__delete", "Delete a page."),  # admins only
        served("ghost__read"),  # no such server here
        served("plain_name"),  # not namespaced
        served("docs__secret"),  # not declared
        served("docs__read", "Read a page."),  # listed twice
    ]
    found = check(fleet, listed, frozenset({"reader"}), "serve")
    assert found.problems == ("undeclared", "access", "duplicate")
    assert found.not_callable == ("docs__delete",)
    assert found.foreign == ("ghost__read", "plain_name")
    assert found.undeclared == ("docs__secret",)
    assert found.duplicates == ("docs__read",)


def test_unknown_roles_check_only_what_is_listed(fleet: Fleet) -> None:
    found = check(fleet, [served("wiki__draft")], None, "serve")
    assert found.withheld is None and found.problems == ()


def test_pages_are_bounded_by_the_declared_tools(fleet: Fleet) -> None:
    assert expected_pages(fleet, 100) == 100
    assert expected_pages(fleet, 1) == 5


def token_of(roles: str) -> str:
    return sign({"roles": roles})


def test_what_is_checked_depends_on_the_endpoint_and_the_token_file(fleet: Fleet) -> None:
    mapping = Tokens(per_server={"docs": token_of("admin"), "/mcp": token_of("reader")}, source="t.yaml")
    both = plan(fleet, "https://gw.example.com", mapping)
    assert [target.name for target in both.servers] == ["docs", "wiki"]
    assert both.unified is not None and both.unified.url == "https://gw.example.com/mcp"
    assert both.unified.roles == frozenset({"reader"}) and both.unified.token_kind == "own"
    assert both.count == 3
    # "/mcp" is no server: the token file names no unknown server.
    assert both.notes == ("t.yaml has no token for: wiki (tried without one)",)

    alone = plan(fleet, "https://gw.example.com/mcp/", mapping)
    assert alone.servers == () and alone.unified is not None
    assert (
        alone.unified.url == "https://gw.example.com/mcp" and alone.endpoint == "https://gw.example.com/mcp"
    )
    assert not alone.servers_checked

    servers_only = Tokens(per_server={"docs": token_of("admin")}, source="t.yaml")
    without = plan(fleet, "https://gw.example.com", servers_only)
    assert without.unified is None
    assert any("--endpoint https://gw.example.com/mcp" in note for note in without.notes)
    assert plan(fleet, "https://gw.example.com").unified is None

    shared = plan(fleet, "https://gw.example.com/mcp", Tokens(shared=token_of("reader")))
    assert shared.unified is not None and shared.unified.token_kind == "shared"


def test_a_report_fails_when_the_fleet_endpoint_does(fleet: Fleet) -> None:
    from mcpfleet.verify.listing import Listing
    from mcpfleet.verify.run import EndpointReport, endpoint_target

    target = endpoint_target(fleet, "https://gw/mcp", Tokens(shared=token_of("reader")))
    listings = (Listing("modern", "ok", tuple(honest("reader"))), Listing("legacy", "ok", ()))
    found = check(fleet, [], frozenset({"reader"}), "serve")
    report = EndpointReport(target, listings, found, ("docs__read",))
    assert report.problems == ("withheld", "disagree")
    assert not FleetReport("dev", "https://gw/mcp", (), (), report, False).ok
