"""Golden manifests of the reference catalog (tests/golden/catalog): reviewed as diffs, never edited by hand.

Regenerate with `make golden` after an intended change, and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.generate import ENVIRONMENTS, GOLDEN, golden_manifests


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_manifests_match_the_golden_files(env: str) -> None:
    rendered = golden_manifests(env)
    committed = {
        str(path.relative_to(GOLDEN / env)): path.read_text(encoding="utf-8")
        for path in sorted((GOLDEN / env).rglob("*.yaml"))
    }
    assert sorted(rendered) == sorted(committed), "files differ: run `make golden` and review the diff"
    for name, text in rendered.items():
        assert text == committed[name], f"{env}/{name} drifted: run `make golden` and review the diff"


def test_golden_files_exist_for_every_server() -> None:
    for env in ENVIRONMENTS:
        assert list((GOLDEN / env / "manifests" / "servers").glob("*.yaml")), env
    assert Path(GOLDEN / "prod" / "manifests" / "servers" / "search.yaml").exists()
