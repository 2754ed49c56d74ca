"""A stack file's settings get the same help as catalog entries: the setting's own line, where a
misplaced one belongs, the nearest known name or value, in plain words (copies of the repository's
stack files, edited as text so each problem has its line)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mcpfleet.cli.main import app
from mcpfleet.errors import InvalidInput
from mcpfleet.stacks.loader import environment_from_config
from mcpfleet.stacks.models import CONFIG_KEY
from tests.conftest import REPO
from tests.sample import SAMPLE_CATALOG, sample_catalog

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_repo() -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(REPO)
    yield
    os.chdir(previous)


def validate_local(stacks_dir: Path, old: str, new: str) -> tuple[int, str, int]:
    """Replace old by new in the local stack file, validate it; the exit code, stderr, and new's line."""
    path = stacks_dir / "Pulumi.local.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    line = text[: text.index(new)].count("\n") + 1
    command = ["validate", "--env", "local", "--catalog", str(SAMPLE_CATALOG), "--stacks", str(stacks_dir)]
    result = runner.invoke(app, command)
    return result.exit_code, result.stderr, line


@sample_catalog
def test_a_gateway_setting_at_the_environment_level(stacks_dir: Path) -> None:
    code, err, line = validate_local(
        stacks_dir, "    strictness: relaxed\n", "    strictness: relaxed\n    tls: acm\n"
    )
    assert code == 1
    expected = (
        f"Pulumi.local.yaml:{line + 1}: config.mcpfleet:environment.tls: unknown field here: `tls` belongs"
        " under `gateway`; check its indentation"
    )
    assert expected in err, err


@sample_catalog
def test_a_misspelt_setting(stacks_dir: Path) -> None:
    code, err, line = validate_local(
        stacks_dir, "    domain: mcp.localtest.me\n", "    domian: mcp.localtest.me\n"
    )
    assert code == 1
    assert (
        f"Pulumi.local.yaml:{line}: config.mcpfleet:environment.domian: unknown field: did you mean `domain`?"
        in err
    )
    assert "config.mcpfleet:environment.domain: required field is missing" in err


@sample_catalog
def test_a_misspelt_value(stacks_dir: Path) -> None:
    code, err, line = validate_local(stacks_dir, "    strictness: relaxed\n", "    strictness: relax\n")
    assert code == 1
    assert (
        f"Pulumi.local.yaml:{line}: config.mcpfleet:environment.strictness:"
        " must be one of: relaxed, standard, strict (did you mean relaxed?)"
    ) in err


@sample_catalog
def test_a_check_across_settings_points_at_the_setting(stacks_dir: Path) -> None:
    # maxReplicas below replicas: the line of maxReplicas under router, not the environment's first line.
    old = "      replicas: 1\n      maxReplicas: 1\n    monitoring:"
    code, err, line = validate_local(
        stacks_dir, old, "      replicas: 3\n      maxReplicas: 2\n    monitoring:"
    )
    assert code == 1
    assert (
        f"Pulumi.local.yaml:{line + 1}: config.mcpfleet:environment.router.maxReplicas:"
        " maxReplicas is below replicas"
    ) in err, err


def test_pulumi_up_gets_the_same_words(stacks_dir: Path) -> None:
    # `pulumi up` hands the settings over without lines: the words are the same, with the stack file named.
    raw = yaml.safe_load((stacks_dir / "Pulumi.local.yaml").read_text(encoding="utf-8"))["config"][CONFIG_KEY]
    raw["issuer"] = raw["gateway"]["auth"].pop("issuer")
    raw["gateway"]["replicas"] = "2"
    with pytest.raises(InvalidInput) as caught:
        environment_from_config(raw, "stacks/Pulumi.local.yaml")
    where = "stacks/Pulumi.local.yaml: config.mcpfleet:environment"
    assert sorted(str(problem) for problem in caught.value.problems) == [
        f"{where}.gateway.auth.issuer: required field is missing",
        f"{where}.gateway.replicas: must be a whole number, found text (write it without quotes)",
        f"{where}.issuer: unknown field here: `issuer` belongs under `gateway.auth`; check its indentation",
    ]
