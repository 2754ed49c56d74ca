"""Drift between a catalog entry's tools and a listing: added, removed, changed (and which part)."""

from __future__ import annotations

from typing import Any

from mcpfleet.catalog.models import Tool
from mcpfleet.catalog.toolhash import tool_hash
from mcpfleet.verify.compare import ListedTool, compare, disagreement

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
WIDER: dict[str, Any] = {**SCHEMA, "properties": {**SCHEMA["properties"], "lang": {"type": "string"}}}


def pinned(name: str, description: str | None = "Echo text.", schema: dict[str, Any] = SCHEMA) -> Tool:
    return Tool(name=name, description=description, sha256=tool_hash(name, description, schema))


def listed(name: str, description: str | None = "Echo text.", schema: dict[str, Any] = SCHEMA) -> ListedTool:
    return ListedTool(name, description, schema)


def test_identical_listing_has_no_drift() -> None:
    drift = compare([pinned("echo"), pinned("sum")], [listed("sum"), listed("echo")])
    assert not drift.found
    assert (drift.added, drift.removed, drift.changed, drift.unpinned) == ((), (), (), ())


def test_added_and_removed() -> None:
    drift = compare([pinned("echo"), pinned("gone")], [listed("echo"), listed("new"), listed("another")])
    assert drift.found
    assert drift.added == ("another", "new")
    assert drift.removed == ("gone",)


def test_changed_input_schema() -> None:
    drift = compare([pinned("echo")], [listed("echo", schema=WIDER)])
    (change,) = drift.changed
    assert change.name == "echo"
    assert change.parts == ("inputSchema",)
    assert change.pinned == tool_hash("echo", "Echo text.", SCHEMA)
    assert change.listed == tool_hash("echo", "Echo text.", WIDER)


def test_changed_description_only() -> None:
    (change,) = compare([pinned("echo")], [listed("echo", "Echo text, loudly.")]).changed
    assert change.parts == ("description",)


def test_changed_description_and_schema() -> None:
    (change,) = compare([pinned("echo")], [listed("echo", "Echo text, loudly.", WIDER)]).changed
    assert change.parts == ("description", "inputSchema")


def test_a_pin_without_the_servers_text_cannot_say_which_part() -> None:
    # The catalog pinned the real tool but carries no description: the hash alone cannot tell.
    tool = Tool(name="echo", sha256=tool_hash("echo", "Echo text.", SCHEMA))
    (change,) = compare([tool], [listed("echo", schema=WIDER)]).changed
    assert change.parts == ("description or inputSchema",)


def test_unpinned_tools_are_checked_by_name_only() -> None:
    drift = compare([Tool(name="echo", description="a paraphrase")], [listed("echo", "Echo text.", WIDER)])
    assert not drift.found
    assert drift.unpinned == ("echo",)


def test_no_description_hashes_as_empty() -> None:
    assert not compare([pinned("echo", None)], [listed("echo", "")]).found


def test_disagreement_between_listings() -> None:
    modern = [listed("echo"), listed("sum"), listed("only-modern")]
    legacy = [listed("echo"), listed("sum", schema=WIDER)]
    assert disagreement(modern, legacy) == ("only-modern", "sum")
    assert disagreement(modern, list(reversed(modern))) == ()
