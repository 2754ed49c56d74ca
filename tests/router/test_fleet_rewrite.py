"""What the fleet endpoint rewrites in servers' answers, and its pages, without a network."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mcpfleet.router import names
from mcpfleet.router.fleet import FleetAnswer, View, page


def test_uris_in_call_results_become_the_fleets_and_nothing_else_changes() -> None:
    answer: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {
            "content": [
                {"type": "text", "text": "uri: file:///x"},
                {"type": "resource_link", "uri": "file:///a.txt", "name": "a"},
                {"type": "resource", "resource": {"uri": "demo://r/1", "text": "one"}},
            ],
            "structuredContent": {"uri": "left alone"},
        },
    }
    rewritten = copy.deepcopy(answer)
    assert FleetAnswer("docs", "tools/call", None, modernize=False)(rewritten)
    content = rewritten["result"]["content"]
    assert content[0] == answer["result"]["content"][0]
    assert content[1]["uri"] == "mcpfleet://docs/file:///a.txt"
    assert content[2]["resource"]["uri"] == "mcpfleet://docs/demo://r/1"
    assert rewritten["result"]["structuredContent"] == {"uri": "left alone"}
    assert names.split_uri(content[1]["uri"]) == ("docs", "file:///a.txt")


def test_an_answer_without_uris_is_left_as_it_came() -> None:
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "42"}]}}
    assert not FleetAnswer("units", "tools/call", None, modernize=False)(copy.deepcopy(answer))


def test_read_results_prompt_messages_and_update_notifications_are_rewritten() -> None:
    read: dict[str, Any] = {"id": 1, "result": {"contents": [{"uri": "a://1"}, {"uri": "a://2"}]}}
    assert FleetAnswer("s", "resources/read", None, modernize=False)(read)
    assert [c["uri"] for c in read["result"]["contents"]] == ["mcpfleet://s/a://1", "mcpfleet://s/a://2"]
    prompt: dict[str, Any] = {
        "id": 1,
        "result": {
            "messages": [{"role": "user", "content": {"type": "resource", "resource": {"uri": "a://3"}}}]
        },
    }
    assert FleetAnswer("s", "prompts/get", None, modernize=False)(prompt)
    assert prompt["result"]["messages"][0]["content"]["resource"]["uri"] == "mcpfleet://s/a://3"
    note: dict[str, Any] = {"method": "notifications/resources/updated", "params": {"uri": "a://4"}}
    assert FleetAnswer("s", "tools/call", None, modernize=False)(note)
    assert note["params"]["uri"] == "mcpfleet://s/a://4"


def test_a_replaced_id_is_given_back_and_a_legacy_result_made_modern() -> None:
    answer: dict[str, Any] = {"jsonrpc": "2.0", "id": "mcpfleet-9", "result": {"contents": []}}
    assert FleetAnswer("s", "resources/read", ("mcpfleet-9", 7), modernize=True)(answer)
    assert answer["id"] == 7
    assert answer["result"] == {"contents": [], "resultType": "complete", "ttlMs": 0, "cacheScope": "private"}
    other: dict[str, Any] = {"jsonrpc": "2.0", "id": "someone-else", "result": {"resultType": "complete"}}
    assert not FleetAnswer("s", "tools/call", ("mcpfleet-9", 7), modernize=True)(other)
    assert other["id"] == "someone-else"


def view(keys: list[str]) -> View:
    return View(0, keys, [k.encode() for k in keys])


def test_pages_follow_the_last_name_even_when_it_is_gone() -> None:
    keys = [f"s__{i:02d}" for i in range(10)]
    first, cursor = page(view(keys), None, 4)
    assert first == [k.encode() for k in keys[:4]] and cursor == names.encode_cursor(keys[3])
    # The list changed between pages: s__03 and s__04 went away; the walk goes on after s__03.
    rest = [k for k in keys if k not in ("s__03", "s__04")]
    second, cursor = page(view(rest), cursor, 4)
    assert second == [k.encode() for k in ["s__05", "s__06", "s__07", "s__08"]]
    last, cursor = page(view(rest), cursor, 4)
    assert last == [b"s__09"] and cursor is None


def test_a_bad_cursor_is_refused() -> None:
    with pytest.raises(names.BadCursor):
        page(view(["a__b"]), "*", 4)
