"""scripts/bench_router_logic.py: the messages it times are ones the router accepts, a refused one stops it,
and the figures come out. Never timing: speed is the script's output."""

from __future__ import annotations

import re

import pytest
import uvloop

from scripts import bench_router_logic as bench
from scripts.bench_gateway import WORKLOADS


def test_the_script_prints_a_figure_per_kind_of_client(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--calls", "20"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  modern  text/word_count: [0-9]+\.[0-9] µs$", out, re.M), out
    assert re.search(r"^  legacy  notes/search_notes: [0-9]+\.[0-9] µs$", out, re.M), out


def test_a_message_the_router_refuses_is_not_timed() -> None:
    fleet = bench.load_fleet("dev")
    with bench.offline_router(fleet) as (router, tokens, _):
        workload = WORKLOADS["modern"]
        scope, body = bench.request(workload, tokens[workload.server], fleet.settings.domain, None)
        # Accepted as built (the router listed the real server: the tool is served)...
        assert router.listings.get(workload.server) is not None
        assert uvloop.run(bench.cpu_per_message(router, scope, body, 2)) > 0
        # ...and refused with another server's token (its audience), before any timing.
        other = bench.request(workload, tokens["notes"], fleet.settings.domain, None)[0]
        with pytest.raises(RuntimeError, match="HTTP \\[401\\]"):
            uvloop.run(bench.cpu_per_message(router, other, body, 2))
