"""The examples catalog: valid, plannable, and honest about what it pins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.cli.main import app
from mcpfleet.model import ENVIRONMENTS
from tests.conftest import REPO

EXAMPLES_CATALOG = REPO / "examples" / "catalog"
runner = CliRunner()


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(REPO)
    yield


def test_validates() -> None:
    result = runner.invoke(app, ["validate", "--catalog", "examples/catalog"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("catalog ok: 4 servers;")


def test_every_server_is_enabled_everywhere_with_every_tool_pinned() -> None:
    catalog = load_catalog(EXAMPLES_CATALOG)
    assert sorted(catalog.by_name()) == ["everything", "notes", "text", "units"]
    for server in catalog.servers:
        assert all(server.enabled_in(env) for env in ENVIRONMENTS), server.name
        assert server.tools and all(tool.sha256 for tool in server.tools), server.name
        # No invented digests: the examples publish no image, and Docker Hub documents none for everything.
        assert server.image.digest is None, server.name
        assert server.packages, server.name


def test_schema_reference_points_at_the_repository_schema() -> None:
    for path in sorted((EXAMPLES_CATALOG / "servers").glob("*.yaml")):
        target = path.parent / "../../../catalog/schema.json"
        assert "$schema: ../../../catalog/schema.json" in path.read_text(), path.name
        assert target.resolve() == (REPO / "catalog" / "schema.json").resolve()


@pytest.mark.slow
def test_plans_for_dev(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["plan", "--env", "dev", "--catalog", "examples/catalog", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.stderr
    assert "plan dev: 4 servers" in result.stdout
