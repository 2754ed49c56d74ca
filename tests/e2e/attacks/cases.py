"""The shapes of the corpus: what a case sends (a POST through the gateway, raw bytes, or a scenario of
several steps) and what it must come to (refused, served, or forwarded harmlessly)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tests.e2e.attacks.kit import Kit, Target
from tests.e2e.attacks.wire import Exchange

Answerer = Literal["router", "haproxy"]
ACCEPTED_STATUSES = frozenset({400, 401, 403, 429})
"""Issue 10's acceptance: every refusal is one of these, with a JSON-RPC error."""


@dataclass(frozen=True)
class Refused:
    """The request is refused before any server runs anything.

    status and code: the HTTP status and the JSON-RPC error code (None: the answer is HTTP-level, with no
    JSON-RPC body). by: who answered, proved by the router's audit record being there or not. note:
    why, whenever the status is not one of 400/401/403/429 or the answer is not JSON-RPC."""

    status: int
    code: int | None
    by: Answerer
    note: str = ""
    or_reset: bool = False
    """HAProxy closes with part of the request unread, so the client may get a TCP reset instead of the
    answer: no answer at all on a closed connection counts too (nothing was forwarded either way)."""


@dataclass(frozen=True)
class Served:
    """A control: the tool runs exactly once, as the caller asked, and the answer is its result."""

    tool: str
    server: str | None = None
    tool_error: bool = False
    """The tool ran but reported an error (a modern request has no session for notes to keep notes in)."""


@dataclass(frozen=True)
class Forwarded:
    """A message the router forwards because it is an MCP method clients may send and that names no
    tool: the server answers it (status and whether with a JSON-RPC error), no tool runs."""

    status: int
    rpc_error: bool
    note: str = ""


@dataclass(frozen=True)
class Answered:
    """Answered without forwarding, and not a refusal: HAProxy's own answer (metadata, an interim
    100 Continue). note says what and why."""

    status: int
    note: str


@dataclass(frozen=True)
class Closed:
    """No answer at all: HAProxy closes the connection on bytes that are not HTTP/1.1 (note: why). The
    case's only expectation."""

    note: str


Expectation = Refused | Served | Forwarded | Answered | Closed


@dataclass(frozen=True)
class Post:
    """A POST to the target through the gateway, built like an honest client's but for the trick.

    body: a template (see Kit.fill) or exact bytes. headers replace the default of the same name (all of
    one name kept); drop removes defaults. token: how to make the Authorization token (default: the
    attacker's own). direct: the same message straight to the target's first replica runs the forbidden
    tool (True), is refused by the server itself (False), or is not tried (None)."""

    body: str | bytes
    headers: Sequence[tuple[str, str]] = ()
    drop: Sequence[str] = ()
    path: str | None = None
    token: Callable[[Kit], str] | None = None
    session: bool = True
    host: str | None = None
    direct: bool | None = None


@dataclass(frozen=True)
class Raw:
    """Bytes the case writes itself (one piece, or several with a pause between), over one TLS connection."""

    build: Callable[[Kit], bytes | Sequence[bytes]]
    idle: float = 3.0
    pause: float = 0.0


@dataclass(frozen=True)
class Steps:
    """Several requests; returns the exchange the expectation is about. It may add server records that
    must not appear (kit.forbids) and checks to make once the case's window is closed (kit.checks)."""

    run: Callable[[Kit], Exchange]


Attack = Post | Raw | Steps


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    target: Target
    attack: Attack
    expect: tuple[Expectation, ...]
    """One expectation per answer on the connection, in order."""
    settle: float = 0.25
    """Seconds to wait after the answers for anything a server might still run (a smuggled request)."""
    notes: tuple[str, ...] = field(default_factory=tuple)


def case(
    name: str,
    category: str,
    target: Target,
    attack: Attack,
    *expect: Expectation,
    settle: float = 0.25,
) -> Case:
    return Case(name, category, target, attack, tuple(expect), settle)
