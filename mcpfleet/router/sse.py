"""Server-sent events read incrementally, so a relayed stream is inspected without being buffered whole."""

from __future__ import annotations

from dataclasses import dataclass

MAX_EVENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None


class SseParser:
    """Feed bytes as they arrive; get back the events completed so far.

    An event larger than MAX_EVENT_BYTES stops the parser (`overflowed`): the stream still relays, it is
    only no longer inspected."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self.overflowed = False
        self._pending = b""
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._size = 0
        self._raw: list[bytes] = []

    def unconsumed(self) -> bytes:
        """The bytes read but not yet returned as an event (a part event, a part line), as received."""
        return b"".join(self._raw) + self._pending

    def feed(self, chunk: bytes) -> list[Event]:
        if self.overflowed:
            return []
        buffer = self._pending + chunk
        events: list[Event] = []
        start = 0
        length = len(buffer)
        while start < length:
            newline = buffer.find(b"\n", start)
            carriage = buffer.find(b"\r", start, newline if newline >= 0 else length)
            if carriage >= 0:
                end, after = carriage, carriage + 1
                if after == length:
                    break  # a CR at the end of a chunk may be half of a CRLF
                if buffer[after : after + 1] == b"\n":
                    after += 1
            elif newline >= 0:
                end, after = newline, newline + 1
            else:
                break
            self._line(buffer[start:end], events)
            if self.overflowed:
                return events
            start = after
        self._pending = buffer[start:]
        if len(self._pending) + self._size > self.max_event_bytes:
            self.overflowed = True
            self._pending = b""
        return events

    def _line(self, raw: bytes, events: list[Event]) -> None:
        if not raw:
            if self._data or self._event:
                events.append(Event(self._event or "message", "\n".join(self._data), self._id))
            self._event, self._data, self._size, self._raw = "", [], 0, []
            return
        self._raw.append(raw + b"\n")
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
            self._size += len(raw)
            if self._size > self.max_event_bytes:
                self.overflowed = True
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value


def encode(event: Event) -> bytes:
    """One event back on the wire."""
    lines = [] if event.event == "message" else [f"event: {event.event}"]
    if event.id is not None:
        lines.append(f"id: {event.id}")
    lines.extend(f"data: {line}" for line in event.data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")
