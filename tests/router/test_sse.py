"""The incremental SSE reader finds the same events however the stream is cut."""

from __future__ import annotations

import pytest

from mcpfleet.router.sse import Event, SseParser, encode

STREAM = (
    b": keep-alive\r\n\r\n"
    b"event: endpoint\r\ndata: /messages/?session_id=abc\r\n\r\n"
    b'id: 7\ndata: {"jsonrpc":"2.0",\ndata: "id":1}\n\n'
    b"event: message\rdata: x\r\r\n"
)
EXPECTED = [
    Event("endpoint", "/messages/?session_id=abc", None),
    Event("message", '{"jsonrpc":"2.0",\n"id":1}', "7"),
    Event("message", "x", "7"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_any_chunking(size: int) -> None:
    parser = SseParser()
    events = []
    for start in range(0, len(STREAM), size):
        events.extend(parser.feed(STREAM[start : start + size]))
    assert events == EXPECTED


def test_oversized_event_stops_inspection() -> None:
    parser = SseParser(max_event_bytes=100)
    assert parser.feed(b"data: " + b"x" * 200 + b"\n\n") == []
    assert parser.overflowed
    assert parser.feed(b"data: y\n\n") == []


def test_unconsumed_keeps_a_part_event_as_received() -> None:
    parser = SseParser()
    assert parser.feed(b"event: endpoint\ndata: /m\n\nid: 1\ndata: par") == [Event("endpoint", "/m", None)]
    assert parser.unconsumed() == b"id: 1\ndata: par"


def test_encode() -> None:
    assert encode(Event("endpoint", "/a?b=c", None)) == b"event: endpoint\ndata: /a?b=c\n\n"
    assert encode(Event("message", "1\n2", "9")) == b"id: 9\ndata: 1\ndata: 2\n\n"
