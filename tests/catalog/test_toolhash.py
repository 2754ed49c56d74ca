"""Tool hashes are stable across key order and whitespace, and change with any part of the tool."""

from __future__ import annotations

from mcpfleet.catalog.toolhash import canonical_tool, tool_hash

SCHEMA = {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}


def test_key_order_does_not_matter() -> None:
    reordered = {"required": ["url"], "properties": {"url": {"type": "string"}}, "type": "object"}
    assert tool_hash("fetch", "Fetch a URL", SCHEMA) == tool_hash("fetch", "Fetch a URL", reordered)


def test_any_change_changes_the_hash() -> None:
    base = tool_hash("fetch", "Fetch a URL", SCHEMA)
    assert tool_hash("fetch2", "Fetch a URL", SCHEMA) != base
    assert tool_hash("fetch", "Fetch any URL", SCHEMA) != base
    assert tool_hash("fetch", "Fetch a URL", {**SCHEMA, "required": []}) != base


def test_canonical_form_is_compact_sorted_json() -> None:
    assert (
        canonical_tool("t", None, {"b": 1, "a": 2})
        == b'{"description":"","inputSchema":{"a":2,"b":1},"name":"t"}'
    )
    assert len(tool_hash("t", None, {})) == 64
