"""The router's count of messages per caller of a server and per server over the last minute (HAProxy's
`http_req_rate(1m)`), on a clock the tests move."""

from __future__ import annotations

from mcpfleet.router.ratelimit import Limits, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(max_keys: int = 100) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(max_keys=max_keys, clock=clock), clock


CALLER_5 = Limits(per_caller_per_minute=5, per_server_per_minute=1000)


def test_a_caller_gets_its_limit_then_is_refused() -> None:
    rates, _ = limiter()
    assert [rates.admit("units", "alice", CALLER_5) for _ in range(6)] == [None] * 5 + ["caller"]
    # Another caller and another server have counts of their own.
    assert rates.admit("units", "bob", CALLER_5) is None
    assert rates.admit("text", "alice", CALLER_5) is None


def test_the_minute_slides_the_previous_one_weighted_by_what_is_left_of_it() -> None:
    rates, clock = limiter()
    for _ in range(5):
        assert rates.admit("units", "alice", CALLER_5) is None
    # A new minute begins: the last one still weighs in full, so a burst at its edge is not doubled.
    clock.now += 60
    assert rates.admit("units", "alice", CALLER_5) == "caller"
    # Half-way through it the previous minute's 5 count 2.5, plus this minute's refused 1: 3.5.
    clock.now += 30
    assert rates.admit("units", "alice", CALLER_5) is None  # 3.5 + 1 <= 5
    assert rates.admit("units", "alice", CALLER_5) == "caller"  # 4.5 + 1 > 5
    # Two minutes idle: nothing left of either.
    clock.now += 120
    assert [rates.admit("units", "alice", CALLER_5) for _ in range(6)] == [None] * 5 + ["caller"]


def test_refusals_count_against_their_caller_but_not_the_server() -> None:
    rates, clock = limiter()
    limits = Limits(per_caller_per_minute=2, per_server_per_minute=4)
    assert [rates.admit("units", "alice", limits) for _ in range(10)] == [None] * 2 + ["caller"] * 8
    # alice's refused eight never reached the server: two more callers get two each, then the server is full.
    assert [rates.admit("units", who, limits) for who in ("bob", "bob", "carol")] == [None, None, "server"]
    # A minute on, alice's ten still weigh 10 (she kept sending), the server's four weigh 4.
    clock.now += 60
    assert rates.admit("units", "alice", limits) == "caller"
    assert rates.admit("units", "dave", limits) == "server"


def test_what_the_gateway_admitted_on_the_servers_route_counts_here_too() -> None:
    rates, _ = limiter()
    for _ in range(5):
        rates.note("units", "alice")
    assert rates.admit("units", "alice", CALLER_5) == "caller"
    for _ in range(995):
        rates.note("units", "bob")
    assert rates.admit("units", "carol", CALLER_5) == "server"


def test_caller_counters_are_bounded_least_recently_used_first() -> None:
    rates, _ = limiter(max_keys=2)
    one = Limits(per_caller_per_minute=1, per_server_per_minute=1000)
    assert rates.admit("units", "alice", one) is None
    assert rates.admit("units", "bob", one) is None
    assert rates.admit("units", "alice", one) == "caller"  # alice is now the most recently used
    assert rates.admit("units", "carol", one) is None  # bob's counter is dropped
    assert len(rates) == 2
    assert rates.admit("units", "bob", one) is None  # starts from zero, as an expired table entry
    assert rates.admit("units", "alice", one) is None  # dropped in turn by bob
