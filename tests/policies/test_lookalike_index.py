"""The lookalike rule's index finds exactly the pairs an all-pairs comparison finds, in linear time."""

from __future__ import annotations

import random
from itertools import combinations

from policies.rules.fleet_lookalike_names import candidate_pairs, lookalike


def test_index_finds_every_lookalike_pair_of_a_brute_force_search() -> None:
    rng = random.Random(7)
    alphabet = "abcilmnorsuvw015-_"
    names = {"".join(rng.choice(alphabet) for _ in range(rng.randint(4, 8))) for _ in range(400)}
    names |= {"github", "githib", "goog1e", "google", "mcp-memory", "mcp-rnemory"}
    ordered = sorted(names)
    brute = {(a, b) for a, b in combinations(ordered, 2) if lookalike(a, b)}
    indexed = {(a, b) for a, b in candidate_pairs(ordered) if lookalike(a, b)}
    assert brute == indexed
    assert ("githib", "github") in indexed and ("goog1e", "google") in indexed
