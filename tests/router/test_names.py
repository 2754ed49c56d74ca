"""Fleet names: namespacing round-trips whatever the original holds; cursors refuse what was not issued."""

from __future__ import annotations

import random
import string

import pytest

from mcpfleet.router import names


@pytest.mark.parametrize(
    "original", ["add_note", "a__b", "__lead", "trail__", "x", "with.dot", "with-dash", "ümlaut", "a" * 100]
)
def test_tool_names_round_trip(original: str) -> None:
    namespaced = names.namespace_name("notes", original)
    assert namespaced.startswith("notes__")
    assert names.split_name(namespaced) == ("notes", original)


@pytest.mark.parametrize(
    "namespaced",
    ["notes", "notes__", "__add", "Notes__add", "no_tes__add", "-notes__add", "notes-__add", "a/b__c", ""],
)
def test_names_that_are_not_namespaced_are_refused(namespaced: str) -> None:
    assert names.split_name(namespaced) is None


@pytest.mark.parametrize(
    "uri",
    ["file:///etc/x", "notes://all", "mcpfleet://other/x", "https://h/p?q=1#f", "a", "{+path}/f{?q}", "ü/ß"],
)
def test_resource_uris_round_trip_verbatim(uri: str) -> None:
    namespaced = names.namespace_uri("docs-1", uri)
    assert namespaced == "mcpfleet://docs-1/" + uri
    assert names.split_uri(namespaced) == ("docs-1", uri)


@pytest.mark.parametrize(
    "namespaced", ["mcpfleet://docs", "mcpfleet://docs/", "mcpfleet:///x", "mcpfleet://Docs/x", "file:///x"]
)
def test_uris_that_are_not_namespaced_are_refused(namespaced: str) -> None:
    assert names.split_uri(namespaced) is None


def test_each_servers_names_are_one_contiguous_block_in_code_point_order() -> None:
    """What keyset pagination over per-server segments relies on: sorting every namespaced name equals
    sorting servers by their prefix and each server's names within it, even when one server's name is
    another's prefix (a, a-b, a0)."""
    rng = random.Random(7)
    servers = ["a", "a-b", "a0", "ab", "b", "a-b-c", "z9"]
    alphabet = string.ascii_letters + string.digits + "_-."
    tools = {s: {"".join(rng.choices(alphabet, k=rng.randint(1, 8))) for _ in range(20)} for s in servers}
    flat = sorted(names.namespace_name(s, t) for s in servers for t in tools[s])
    blocks = [
        names.namespace_name(s, t) for s in sorted(servers, key=names.name_prefix) for t in sorted(tools[s])
    ]
    assert flat == blocks
    uris = sorted(names.namespace_uri(s, t) for s in servers for t in tools[s])
    assert uris == [
        names.namespace_uri(s, t) for s in sorted(servers, key=names.uri_prefix) for t in sorted(tools[s])
    ]


@pytest.mark.parametrize("last", ["notes__add_note", "", "mcpfleet://a/ü?x=1", "x" * 300])
def test_cursors_round_trip(last: str) -> None:
    cursor = names.encode_cursor(last)
    assert "=" not in cursor
    assert names.decode_cursor(cursor) == last


@pytest.mark.parametrize(
    "cursor",
    [
        "bm90ZXM=",  # padded
        "bm90ZXM+",  # standard alphabet, not base64url
        "bm90ZXN",  # not canonical (trailing bits)
        "@@@@",
        "_w",  # 0xff: not UTF-8
        "é",
        "A" * (names.MAX_CURSOR_LENGTH + 4),
    ],
)
def test_cursors_not_issued_here_are_refused(cursor: str) -> None:
    with pytest.raises(names.BadCursor):
        names.decode_cursor(cursor)
