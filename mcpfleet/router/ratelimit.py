"""Rates per caller of a server and per server on the fleet endpoint, counted over the last minute.

On a server's own route HAProxy counts them (components/gateway/templates/haproxy.cfg.j2); on `/mcp`
the server a message reaches is in its body, which only the router reads, so the router counts the
messages it forwards there against the same limits: the server's own where the catalog sets them, else
the environment's. Without this a caller would reach a server past its limits by calling its tools
through `/mcp`.

The count is HAProxy's `http_req_rate(1m)`: this minute's count plus the previous minute's, weighted by
the share of the previous minute still inside the last 60 seconds, so a burst straddling a minute's edge
is not admitted twice. Like HAProxy's tables, counters are per replica and bounded: at most
`max_keys` caller counters, the least recently used dropped first (a dropped caller starts from zero,
as an expired stick-table entry does). Written here rather than taken from a library: the ones on PyPI
(limits, aiolimiter) either need a storage backend or count tokens, not HAProxy's sliding minute, and
this is the only arithmetic the check needs.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

PERIOD_SECONDS: Final = 60.0
# As many caller counters as the gateway's caller table holds (components/gateway/config.py).
DEFAULT_MAX_KEYS: Final = 100_000


@dataclass(frozen=True)
class Limits:
    per_caller_per_minute: int
    per_server_per_minute: int


class _Minute:
    """Events in the current period and the one before it (HAProxy's freq_ctr)."""

    __slots__ = ("current", "previous", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.current = 0
        self.previous = 0

    def rate(self, now: float) -> float:
        elapsed = now - self.start
        if elapsed >= 2 * PERIOD_SECONDS:
            self.start, self.current, self.previous = now - elapsed % PERIOD_SECONDS, 0, 0
        elif elapsed >= PERIOD_SECONDS:
            self.start, self.previous, self.current = self.start + PERIOD_SECONDS, self.current, 0
        left = 1.0 - (now - self.start) / PERIOD_SECONDS
        return self.current + self.previous * left


class RateLimiter:
    """Admits a message to a server for a caller, or says which limit it would pass."""

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._callers: OrderedDict[tuple[str, str], _Minute] = OrderedDict()
        self._servers: dict[str, _Minute] = {}

    def admit(self, server: str, caller: str, limits: Limits) -> str | None:
        """None when the message may go (and it is counted), else "caller" or "server": the limit it
        would pass. As HAProxy tracks the request before it checks, a refused message still counts
        against its caller (one that keeps sending stays refused) but not against the server, whose
        count is what reached it."""
        now = self.clock()
        counter = self._caller(server, caller, now)
        # Compared as HAProxy's `sc_http_req_rate(...),sub(limit) gt 0`: the message itself included.
        over = counter.rate(now) + 1 > limits.per_caller_per_minute
        counter.current += 1
        if over:
            return "caller"
        total = self._server(server, now)
        if total.rate(now) + 1 > limits.per_server_per_minute:
            return "server"
        total.current += 1
        return None

    def note(self, server: str, caller: str) -> None:
        """Count a message the gateway already admitted on the server's own route: a caller using both
        the route and `/mcp` is held to one limit over the two, as is the server."""
        now = self.clock()
        for counter in (self._caller(server, caller, now), self._server(server, now)):
            counter.rate(now)  # moves its periods on to now first
            counter.current += 1

    def _caller(self, server: str, caller: str, now: float) -> _Minute:
        key = (server, caller)
        counter = self._callers.get(key)
        if counter is None:
            counter = self._callers[key] = _Minute(now)
            if len(self._callers) > self.max_keys:
                self._callers.popitem(last=False)
        else:
            self._callers.move_to_end(key)
        return counter

    def _server(self, server: str, now: float) -> _Minute:
        total = self._servers.get(server)
        if total is None:
            total = self._servers[server] = _Minute(now)
        return total

    def __len__(self) -> int:
        return len(self._callers)
