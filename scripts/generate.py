"""Regenerate committed artifacts from their sources: `python -m scripts.generate schema|golden`.

Tests compare the committed files with what this writes, so they never drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCHEMA_FILE = REPO / "catalog" / "schema.json"
GOLDEN = REPO / "tests" / "golden"
GOLDEN_CATALOG = GOLDEN / "catalog"
ENVIRONMENTS = ("local", "dev", "staging", "prod")


def golden_manifests(env: str) -> dict[str, str]:
    """The manifests of the reference catalog for env, by path under tests/golden/<env>/."""
    from mcpfleet.plan.run import plan

    result = plan(env, GOLDEN_CATALOG, REPO / "stacks", None)  # type: ignore[arg-type]
    return {name: text for name, text in result.files.items() if name.startswith("manifests/")}


def write_schema() -> None:
    from mcpfleet.catalog.schema import render_schema

    SCHEMA_FILE.write_text(render_schema(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE.relative_to(REPO)}")


def write_golden() -> None:
    from mcpfleet.outputs import replace_directory

    for env in ENVIRONMENTS:
        replace_directory(GOLDEN / env, golden_manifests(env))
        print(f"wrote tests/golden/{env}/")


def main(argv: list[str]) -> int:
    targets = {"schema": write_schema, "golden": write_golden}
    if len(argv) != 1 or argv[0] not in targets:
        print(f"usage: python -m scripts.generate {{{'|'.join(targets)}}}", file=sys.stderr)
        return 2
    targets[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
