"""`mcpfleet plan` names every secret value the environment's servers read and the command that puts it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mcpfleet.cli.plan import SHOWN_SECRET_COMMANDS, secret_values_summary
from mcpfleet.plan.run import load_inputs

REPO = Path(__file__).resolve().parents[2]
GOLDEN_CATALOG = REPO / "tests" / "golden" / "catalog"
STACKS = REPO / "stacks"


def test_cloud_environments_name_each_store_secret_and_its_put_command() -> None:
    _, fleet = load_inputs("dev", GOLDEN_CATALOG, STACKS)
    lines = secret_values_summary(fleet)
    assert lines[0].startswith("secret values: 1 servers read 1 values from Secrets Manager")
    assert "waits for none of them" in lines[0]
    assert lines[1].strip().startswith("aws secretsmanager put-secret-value")
    assert "--secret-id mcpfleet/dev/search/api-key" in lines[1]
    assert "file://VALUE_FILE" in lines[1]  # the value never goes on a command line
    assert lines[1].endswith("# search: SEARCH_API_KEY")


def test_local_names_the_pulumi_config_command() -> None:
    _, fleet = load_inputs("local", GOLDEN_CATALOG, STACKS)
    lines = secret_values_summary(fleet)
    assert "stops before creating anything" in lines[0]
    assert (
        "pulumi config set --secret --type string --path 'mcpfleet:secrets.search/api-key' -s local"
        in (lines[1])
    )


def test_a_large_fleet_shows_a_bounded_list_and_where_the_rest_is(tmp_path: Path) -> None:
    servers = tmp_path / "catalog" / "servers"
    servers.mkdir(parents=True)
    text = (GOLDEN_CATALOG / "servers" / "search.yaml").read_text(encoding="utf-8")
    count = SHOWN_SECRET_COMMANDS + 5
    for index in range(count):
        name = f"search{index}"
        entry = text.replace("name: search\n", f"name: {name}\n").replace("search/api-key", f"{name}/key")
        (servers / f"{name}.yaml").write_text(entry, encoding="utf-8")
    _, fleet = load_inputs("dev", tmp_path / "catalog", STACKS)
    lines = secret_values_summary(fleet)
    assert len(lines) == 1 + SHOWN_SECRET_COMMANDS + 1
    assert (
        lines[-1].strip()
        == "... and 5 more: the mcpfleet.io/put-values annotation of each server's ExternalSecret"
    )


@pytest.mark.parametrize("env", ["dev", "local"])
def test_no_secrets_no_summary(env: str, tmp_path: Path) -> None:
    servers = tmp_path / "catalog" / "servers"
    servers.mkdir(parents=True)
    shutil.copyfile(GOLDEN_CATALOG / "servers" / "notes.yaml", servers / "notes.yaml")
    _, fleet = load_inputs(env, tmp_path / "catalog", STACKS)  # type: ignore[arg-type]
    assert secret_values_summary(fleet) == []
