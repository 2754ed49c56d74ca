"""HTTP/1.1 as an attacker writes it: requests built byte by byte, sent over a raw TLS socket (or plain TCP
straight to a server), and every answer that comes back on the connection read as it arrived.

Nothing here fixes up what a case sends: duplicate headers, odd casing, bare LF, obs-fold, conflicting
framing all reach the peer exactly as written, which is the point.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Headers = Sequence[tuple[str, str]]
READ_IDLE_SECONDS = 3.0


@dataclass
class Reply:
    """One HTTP response as it came off the wire."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    """Names lower-cased, in arrival order, duplicates kept."""
    body: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key == name.lower()]
        return values[0] if values else None

    @property
    def request_id(self) -> str | None:
        return self.header("x-request-id")

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()

    def message(self) -> Any:
        """The JSON-RPC message in the body (a JSON body, or the last `data:` event of an SSE body);
        None when there is none."""
        if self.content_type == "application/json":
            try:
                return json.loads(self.body)
            except ValueError:
                return None
        if self.content_type == "text/event-stream":
            data = [
                line[5:].strip()
                for line in self.body.decode("utf-8", "replace").splitlines()
                if line.startswith("data:")
            ]
            for item in reversed(data):
                try:
                    return json.loads(item)
                except ValueError:
                    continue
        return None

    def summary(self) -> str:
        text = self.body[:300].decode("utf-8", "replace")
        return f"HTTP {self.status} {self.reason} rid={self.request_id} body={text!r}"


@dataclass
class Exchange:
    """What one connection carried: the bytes sent and every answer read back."""

    sent: bytes
    replies: list[Reply] = field(default_factory=list)
    leftover: bytes = b""
    """Bytes after the last complete answer (an answer cut short)."""
    closed: bool = False
    """The peer closed the connection (else reading stopped after READ_IDLE_SECONDS of silence)."""

    def describe(self) -> str:
        lines = [f"sent {len(self.sent)} bytes: {self.sent[:1500]!r}"]
        lines += [f"  <- {reply.summary()}" for reply in self.replies]
        if self.leftover:
            lines.append(f"  <- incomplete: {self.leftover[:200]!r}")
        lines.append("  (peer closed)" if self.closed else "  (peer silent, connection left open)")
        return "\n".join(lines)


def request(
    method: str,
    target: str,
    headers: Headers,
    body: bytes | None = None,
    *,
    version: str = "HTTP/1.1",
    length: bool = True,
    eol: bytes = b"\r\n",
) -> bytes:
    """A request's bytes: the request line, the headers exactly as given, Content-Length for body unless
    length is False (then the caller frames the body, or not), a blank line, the body."""
    lines = [f"{method} {target} {version}".encode("latin-1")]
    lines += [f"{name}: {value}".encode() for name, value in headers]
    if body is not None and length:
        lines.append(f"Content-Length: {len(body)}".encode("ascii"))
    return eol.join(lines) + eol + eol + (body or b"")


def chunked(body: bytes, size: int = 0) -> bytes:
    """body in Transfer-Encoding: chunked framing (one chunk, or chunks of size), then the last chunk."""
    size = size or len(body) or 1
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


def connect_tls(
    address: str,
    port: int,
    tls: ssl.SSLContext,
    server_name: str,
    timeout: float,
    source: str | None = None,
) -> socket.socket:
    """A TLS connection to address:port (SNI and certificate check for server_name), from source."""
    raw = socket.create_connection(
        (address, port), timeout=timeout, source_address=(source, 0) if source else None
    )
    return tls.wrap_socket(raw, server_hostname=server_name)


def connect_plain(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout=timeout)


def exchange(
    sock: socket.socket,
    data: bytes | Sequence[bytes],
    *,
    idle: float = READ_IDLE_SECONDS,
    pause: float = 0.0,
    expect_replies: int | None = None,
) -> Exchange:
    """Send data (several pieces: with pause seconds between them), then read until the peer closes, or
    until it has been silent for idle seconds, or until expect_replies complete answers arrived."""
    pieces = [data] if isinstance(data, bytes) else list(data)
    sent = b""
    received = b""
    closed = False
    try:
        for index, piece in enumerate(pieces):
            if index and pause:
                time.sleep(pause)
            sock.sendall(piece)
            sent += piece
        sock.settimeout(idle)
        while True:
            if expect_replies is not None:
                replies, _ = parse_replies(received)
                if len(replies) >= expect_replies:
                    break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        closed = True
    finally:
        sock.close()
    replies, leftover = parse_replies(received)
    return Exchange(sent, replies, leftover, closed)


def parse_replies(data: bytes) -> tuple[list[Reply], bytes]:
    """Every complete HTTP/1.x response in data, and what is left after them."""
    replies: list[Reply] = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head = data[:end].decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            break
        status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        headers = []
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        names = dict(headers)
        rest = data[end + 4 :]
        if status in (100, 101, 102, 103):
            replies.append(Reply(status, reason, headers, b""))
            data = rest
            continue
        if names.get("transfer-encoding", "").lower() == "chunked":
            body, remaining = _dechunk(rest)
            if body is None:
                break
        elif "content-length" in names:
            size = int(names["content-length"])
            if len(rest) < size:
                break
            body, remaining = rest[:size], rest[size:]
        else:
            body, remaining = rest, b""  # delimited by the connection's end
        replies.append(Reply(status, reason, headers, body))
        data = remaining
    return replies, data


def _dechunk(data: bytes) -> tuple[bytes | None, bytes]:
    body = b""
    while True:
        end = data.find(b"\r\n")
        if end < 0:
            return None, data
        size = int(data[:end].split(b";")[0].strip() or b"0", 16)
        data = data[end + 2 :]
        if size == 0:
            trailer_end = data.find(b"\r\n")
            if trailer_end < 0:
                return None, data
            return body, data[trailer_end + 2 :]
        if len(data) < size + 2:
            return None, data
        body += data[:size]
        data = data[size + 2 :]
