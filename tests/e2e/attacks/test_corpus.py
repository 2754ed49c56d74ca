"""The attack corpus against the prod data plane: each case one test, named for its trick.

The fleet is the end-to-end harness's (tests/e2e/gateway.py, the `fleet` fixture): two HAProxy and two
router replicas running the prod plan's configuration byte for byte in front of the real servers. A case
passes when the forbidden tool did not run (by the servers' own records), the answer is what the case
says (status, JSON-RPC error, who answered), and every message a server ran during the case has the
router's audit record naming the same method and tool, and the gateway's log line (joined by request id).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.attacks.cases import ACCEPTED_STATUSES, Answered, Closed, Refused, Served
from tests.e2e.attacks.corpus import BY_NAME, CASES, CATEGORIES
from tests.e2e.attacks.play import Outcome, play
from tests.e2e.attacks.stack import Stack, recorded_everything, source_address
from tests.e2e.gateway import RunningFleet

MINIMUM_CASES = 100
RESULTS = "attack-results.json"
OUTCOMES: list[Outcome] = []
"""Every case played in this run, for the figures written when the fleet stops."""


@pytest.fixture(scope="module")
def stack(fleet: RunningFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The harness's fleet, whole, with server-everything keeping its own record of what it ran."""
    workdir = tmp_path_factory.mktemp("attacks")
    fleet.whole()
    started = time.monotonic()
    with recorded_everything(fleet, workdir):
        yield Stack(fleet)
    _write_results(workdir / RESULTS, OUTCOMES, time.monotonic() - started)


def _write_results(path: Path, outcomes: list[Outcome], seconds: float) -> None:
    """Figures for the run's report: cases per category, what broke through, how long it took."""
    summary = {
        "seconds": round(seconds, 1),
        "cases": len(outcomes),
        "per_category": dict(Counter(o.case.category for o in outcomes)),
        "failed": [o.case.name for o in outcomes if o.problems],
        "breakthroughs": [o.report() for o in outcomes if o.breakthrough],
        "direct_runs": sorted(o.case.name for o in outcomes if o.direct),
        "figures": {o.case.name: o.figures for o in outcomes if o.figures},
    }
    path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"\nattack corpus: {path}")


def test_the_corpus_has_enough_cases_in_every_category() -> None:
    assert len(CASES) >= MINIMUM_CASES, len(CASES)
    assert len(BY_NAME) == len(CASES), "case names must be unique"
    counts = Counter(case.category for case in CASES)
    assert set(counts) == set(CATEGORIES), set(counts) ^ set(CATEGORIES)
    assert all(counts[category] >= 1 for category in CATEGORIES)


def test_every_refusal_outside_the_accepted_statuses_says_why() -> None:
    for case in CASES:
        for expectation in case.expect:
            if isinstance(expectation, Refused):
                if expectation.status not in ACCEPTED_STATUSES or expectation.code is None:
                    assert expectation.note, f"{case.name}: {expectation.status} needs its reason"
                    assert expectation.by == "haproxy" or expectation.note, case.name
            elif isinstance(expectation, Answered | Closed):
                assert expectation.note, case.name


def test_controls_cover_both_servers_and_the_forbidden_tools_themselves() -> None:
    served = {
        (expectation.server or case.target.server, expectation.tool)
        for case in CASES
        if case.category == "controls"
        for expectation in case.expect
        if isinstance(expectation, Served)
    }
    # The same tools the attacks go for run for a caller allowed them: the corpus cannot pass because
    # nothing runs at all.
    assert {
        ("notes", "delete_note"),
        ("everything", "get-env"),
        ("notes", "add_note"),
        ("everything", "echo"),
    } <= served


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_attack(stack: Stack, name: str) -> None:
    case = BY_NAME[name]
    index = CASES.index(case)
    outcome = play(stack, case, f"mallory-{index:03d}", source_address(index))
    OUTCOMES.append(outcome)
    assert not outcome.problems, outcome.report()
