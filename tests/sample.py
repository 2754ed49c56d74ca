"""Where tests find the sample catalog: the repository's catalog/, or the copy MCPFLEET_TEST_CATALOG names.

Every test that reads the sample catalog takes its location from here and carries the `sample_catalog`
marker, so tests/test_catalog_growth.py can run them all against a changed copy of it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ENV_VARIABLE = "MCPFLEET_TEST_CATALOG"
SAMPLE_CATALOG = Path(os.environ.get(ENV_VARIABLE) or REPO / "catalog").resolve()

# What these tests may assert is what holds for any valid catalog: never which entries the sample holds.
sample_catalog = pytest.mark.sample_catalog


def sample_entries() -> list[Path]:
    """The sample catalog's entry files, sorted."""
    return sorted((SAMPLE_CATALOG / "servers").glob("*.yaml"))


def copy_sample(target: Path, **extra: dict[str, Any]) -> Path:
    """A copy of the sample catalog at target, with extra entries (name=entry) of the test's own added."""
    shutil.copytree(SAMPLE_CATALOG, target)
    for name, entry in extra.items():
        path = target / "servers" / f"{name}.yaml"
        # The test's own entry stands in for any sample entry of that name.
        path.write_text(yaml.safe_dump(entry, sort_keys=False), encoding="utf-8")
    return target
