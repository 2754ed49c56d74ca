"""A pull request that adds, edits or removes sample entries keeps the suite green unless an entry is wrong.

Every test that reads the sample catalog is marked `sample_catalog` and finds it where MCPFLEET_TEST_CATALOG
says (tests/sample.py). Here a copy of catalog/ grows by a server written by `mcpfleet new`, has one entry
edited and another removed, and all those tests run against it in a pytest of their own; then a copy with
one invalid entry must turn a few of them red.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from mcpfleet.catalog.loader import load_catalog
from tests.sample import ENV_VARIABLE, REPO, copy_sample

pytestmark = pytest.mark.slow

NEW_SERVER = (
    "new",
    "weather",
    "--image",
    "ghcr.io/acme/weather-mcp:2.1.0",
    "--contact",
    "weather-team@acme.test",
    "--repository",
    "https://github.com/acme/weather-mcp",
    "--team",
    "data",
)
# The sample-catalog tests a wrong entry must fail: quick ones, from the catalog's own to the CLI's.
SMALL_SUBSET = ("tests/catalog/test_sample_catalog.py", "tests/cli/test_cli.py")


def mcpfleet(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpfleet", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def sample_tests(catalog: Path, *paths: str) -> subprocess.CompletedProcess[str]:
    """The sample catalog's tests (only those under paths, if given) against catalog, in a pytest of
    their own."""
    environ = {**os.environ, ENV_VARIABLE: str(catalog)}
    environ.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "sample_catalog", "-q", "-p", "no:cacheprovider", *paths],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def tail(done: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    return "\n".join((done.stdout + done.stderr).splitlines()[-lines:])


def edit_description(path: Path, text: str) -> None:
    """Change the description alone, keeping every comment and the layout of the rest of the file."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # long lines stay as they are
    yaml.indent(mapping=2, sequence=4, offset=2)  # the sample's style: lists indented under their key
    data = yaml.load(path)
    # The block style of the old text (a folded `>` scalar keeps its `>`), with the new text.
    data["description"] = type(data["description"])(text)
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)


def test_a_grown_sample_catalog_keeps_the_sample_tests_green(tmp_path: Path) -> None:
    catalog = copy_sample(tmp_path / "catalog")
    (catalog / "servers" / "weather.yaml").unlink(missing_ok=True)
    entries = load_catalog(catalog).entries
    assert len(entries) >= 2, "the sample needs two entries: one to edit, one to remove"
    # Edit a server that runs in prod when there is one (the strictest review), and remove another.
    edited = next((e for e in entries if e.server.enabled_in("prod")), entries[0])
    removed = next(e for e in reversed(entries) if e is not edited)
    edited_path = catalog / "servers" / Path(edited.file).name
    edit_description(edited_path, f"{edited.server.description} Edited by a pull request.")
    (catalog / "servers" / Path(removed.file).name).unlink()
    mcpfleet(*NEW_SERVER, "--catalog", str(catalog))

    grown = load_catalog(catalog).by_name()
    assert "weather" in grown and removed.server.name not in grown
    assert grown[edited.server.name].description.endswith("Edited by a pull request.")
    assert edited_path.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=")

    done = sample_tests(catalog)
    assert done.returncode == 0, tail(done)
    assert " passed" in done.stdout and "deselected" in done.stdout, tail(done)


def test_an_invalid_new_entry_turns_the_sample_tests_red(tmp_path: Path) -> None:
    catalog = copy_sample(tmp_path / "catalog")
    (catalog / "servers" / "weather.yaml").unlink(missing_ok=True)
    mcpfleet(*NEW_SERVER, "--catalog", str(catalog))
    # A typo a reviewer could miss: the port one digit too long.
    entry = catalog / "servers" / "weather.yaml"
    text = entry.read_text(encoding="utf-8")
    assert text.count("  port: 8080\n") == 1
    entry.write_text(text.replace("  port: 8080\n", "  port: 80800\n"), encoding="utf-8")

    done = sample_tests(catalog, *SMALL_SUBSET)
    assert done.returncode == 1, tail(done)
    assert "weather.yaml" in done.stdout and "transport.port" in done.stdout, tail(done)
    assert " failed" in done.stdout, tail(done)
