"""`mcpfleet new`: the written entry loads, plans in dev, and nothing is invented or overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.cli.main import app
from mcpfleet.plan.run import plan
from tests.conftest import minimal_server
from tests.sample import copy_sample, sample_catalog

pytestmark = sample_catalog
runner = CliRunner()

REQUIRED = (
    "--image",
    "ghcr.io/acme/weather-mcp:2.1.0",
    "--contact",
    "weather-team@acme.test",
    "--repository",
    "https://github.com/acme/weather-mcp",
)


# The names the tests write; the copy's own entries of these names, if any, are taken out.
WRITTEN = ("weather", "clock")
EXISTING = "existing"


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A copy of the sample catalog, so the new entry is planned among the real ones, with one entry of
    the test's own (EXISTING) and none of the names the tests write."""
    target = copy_sample(tmp_path / "catalog", **{EXISTING: minimal_server(EXISTING)})
    for name in WRITTEN:
        (target / "servers" / f"{name}.yaml").unlink(missing_ok=True)
    return target


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout + result.stderr


def test_written_entry_loads_and_plans_in_dev(catalog: Path, stacks_dir: Path) -> None:
    code, output = invoke("new", "weather", *REQUIRED, "--team", "data", "--catalog", str(catalog))
    assert code == 0, output
    path = catalog / "servers" / "weather.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../schema.json\n$schema: ../schema.json\n")
    assert "TODO" in text  # the owner is told what is left to fill

    server = load_catalog(catalog).by_name()["weather"]
    assert server.image.reference == "ghcr.io/acme/weather-mcp:2.1.0"
    assert server.owner.team == "data" and server.owner.contact == "weather-team@acme.test"
    assert server.version == "2.1.0"
    assert sorted(server.environments) == ["dev", "local"]
    assert server.egress == [] and server.secrets == [] and server.run_as_user == 65532

    result = plan("dev", catalog, stacks_dir, None)
    assert "weather" in {s.name for s in result.fleet.servers}
    assert any(r.name.startswith("weather") for r in result.registrations)
    assert "weather" not in {s.name for s in plan("prod", catalog, stacks_dir, None).fleet.servers}


def test_stdio_entry_carries_its_command(catalog: Path, stacks_dir: Path) -> None:
    code, output = invoke(
        "new",
        "clock",
        "--image",
        "docker.io/supercorp/supergateway:3.4.3-uvx",
        "--contact",
        "#clock-owners",
        "--repository",
        "https://example.org/git/clock",
        "--transport",
        "stdio",
        "--command",
        "uvx mcp-clock==1.0.0 --utc",
        "--version",
        "1.0.0",
        "--catalog",
        str(catalog),
    )
    assert code == 0, output
    raw = yaml.safe_load((catalog / "servers" / "clock.yaml").read_text(encoding="utf-8"))
    assert raw["transport"] == {
        "type": "stdio",
        "port": 8000,
        "path": "/mcp",
        "command": ["uvx", "mcp-clock==1.0.0", "--utc"],
    }
    assert raw["repository"]["source"] == "other" and raw["version"] == "1.0.0"
    assert "clock" in {s.name for s in plan("dev", catalog, stacks_dir, None).fleet.servers}


def test_refuses_an_existing_file_and_leaves_it_alone(catalog: Path) -> None:
    path = catalog / "servers" / f"{EXISTING}.yaml"
    before = path.read_bytes()
    code, output = invoke("new", EXISTING, *REQUIRED, "--catalog", str(catalog))
    assert code == 1
    assert f"{EXISTING}.yaml" in output and "already exists" in output and "Traceback" not in output
    assert path.read_bytes() == before


@pytest.mark.parametrize("name", ["Weather", "9lives", "has_underscore", "ends-", "a" * 41, "../escape"])
def test_refuses_an_invalid_name_with_the_rule(catalog: Path, name: str) -> None:
    before = sorted(catalog.parent.rglob("*"))
    code, output = invoke("new", name, *REQUIRED, "--catalog", str(catalog))
    assert code == 1
    assert "DNS label" in output and "Traceback" not in output
    assert sorted(catalog.parent.rglob("*")) == before


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--image", "ghcr.io/acme/weather-mcp:latest", "never `latest`"),
        ("--image", "ghcr.io/acme/weather-mcp", "REPOSITORY:TAG"),
        ("--image", "ghcr.io/acme/weather-mcp@sha256:" + "a" * 64, "digestSource"),
        ("--contact", "x", "--contact"),
        ("--repository", "http://github.com/acme/weather", "--repository"),
        ("--team", "Data Team", "--team"),
    ],
)
def test_refuses_bad_options_naming_them(catalog: Path, option: str, value: str, message: str) -> None:
    args = list(REQUIRED)
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    code, output = invoke("new", "weather", *args, "--catalog", str(catalog))
    assert code == 1, output
    assert message in output and "Traceback" not in output
    assert not (catalog / "servers" / "weather.yaml").exists()


def test_stdio_needs_a_command_and_http_takes_none(catalog: Path) -> None:
    code, output = invoke("new", "weather", *REQUIRED, "--transport", "stdio", "--catalog", str(catalog))
    assert code == 1 and "--command" in output
    code, output = invoke("new", "weather", *REQUIRED, "--command", "run me", "--catalog", str(catalog))
    assert code == 1 and "--command" in output


@pytest.mark.parametrize("missing", ["--image", "--contact", "--repository"])
def test_nothing_is_invented_the_image_and_owner_are_required(catalog: Path, missing: str) -> None:
    args = list(REQUIRED)
    index = args.index(missing)
    del args[index : index + 2]
    code, output = invoke("new", "weather", *args, "--catalog", str(catalog))
    assert code == 2 and missing in output
    assert not (catalog / "servers" / "weather.yaml").exists()
