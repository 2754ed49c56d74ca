"""`mcpfleet pin --tools` against the reference servers running on loopback: the hashes it writes are the
ones the examples catalog pinned from the same servers, and `verify` agrees with them afterwards."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mcpfleet.cli.main import app
from tests.conftest import REPO
from tests.examples.running import Running, free_port, reference_server

pytestmark = pytest.mark.slow

runner = CliRunner()
SERVERS = ("units", "text")
CLOSED = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Running]]:
    logs = tmp_path_factory.mktemp("pin-tool-logs")
    with (
        reference_server("units", "--replica-id", "units-1", log_dir=logs) as units,
        reference_server("text", "--replica-id", "text-1", log_dir=logs) as text,
    ):
        yield {"units": units, "text": text}


def pins_of(path: Path) -> dict[str, str | None]:
    entry = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {tool["name"]: tool.get("sha256") for tool in entry["tools"]}


@pytest.fixture
def unpinned(tmp_path: Path) -> Path:
    """The examples catalog with every tool pin of units and text removed (lines only, comments kept)."""
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "examples" / "catalog", catalog)
    for name in SERVERS:
        path = catalog / "servers" / f"{name}.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"(?m)^ +sha256: [0-9a-f]{64}\n", "", text), encoding="utf-8")
        assert set(pins_of(path).values()) == {None}
    return catalog


def pin_tools(catalog: Path, urls: dict[str, str], *args: str) -> tuple[int, str, str]:
    command = ["pin", "--tools", "--env", "dev", "--catalog", str(catalog), "--stacks", str(REPO / "stacks")]
    command += ["--endpoint", CLOSED]
    for name, url in urls.items():
        command += ["--server", name, f"--server-url={name}={url}"]
    result = runner.invoke(app, [*command, *args])
    return result.exit_code, result.stdout, result.stderr


def test_pins_equal_the_servers_measured_pins(servers: dict[str, Running], unpinned: Path) -> None:
    code, out, err = pin_tools(unpinned, {name: running.url for name, running in servers.items()})
    assert code == 0, out + err
    for name in SERVERS:
        measured = pins_of(REPO / "examples" / "catalog" / "servers" / f"{name}.yaml")
        assert pins_of(unpinned / "servers" / f"{name}.yaml") == measured
        # Only the hash lines came back: the rest of the file is as the examples catalog has it.
        original = (REPO / "examples" / "catalog" / "servers" / f"{name}.yaml").read_text(encoding="utf-8")
        assert (unpinned / "servers" / f"{name}.yaml").read_text(encoding="utf-8") == original
    assert "convert: pinned dfbfb0a5f6699ea048ce1fa3f99f9dc238010ad53c2d48c3254c3e90c5e46101" in out

    # verify, the command that checks these pins, finds no drift against what pin wrote.
    verify = ["verify", "--env", "dev", "--catalog", str(unpinned), "--endpoint", CLOSED]
    verify += [f"--server-url={name}={running.url}" for name, running in servers.items()]
    result = runner.invoke(app, verify)
    assert "units: ok" in result.stdout and "text: ok" in result.stdout, result.stdout


def test_a_changed_tool_is_updated_and_shown(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "examples" / "catalog", catalog)
    before = pins_of(catalog / "servers" / "units.yaml")
    with reference_server("units", "--drift", log_dir=tmp_path) as drifted:
        code, out, err = pin_tools(catalog, {"units": drifted.url})
    assert code == 0, out + err
    after = pins_of(catalog / "servers" / "units.yaml")
    assert after["convert"] != before["convert"]
    assert {k: v for k, v in after.items() if k != "convert"} == {
        k: v for k, v in before.items() if k != "convert"
    }
    assert f"convert: updated {before['convert']} -> {after['convert']}" in out


def test_an_unreachable_server_means_nothing_is_written(servers: dict[str, Running], unpinned: Path) -> None:
    before = {p.name: p.read_bytes() for p in (unpinned / "servers").iterdir()}
    urls = {"units": servers["units"].url, "text": f"http://127.0.0.1:{free_port()}/mcp"}
    code, out, err = pin_tools(unpinned, urls, "--timeout", "3")
    assert code == 1
    assert re.search(r"text: FAILED: unreachable", out), out
    assert "not listed; nothing written" in err and "text:" in err
    assert {p.name: p.read_bytes() for p in (unpinned / "servers").iterdir()} == before


def test_a_server_not_in_the_environment_is_a_usage_error(unpinned: Path) -> None:
    code, _, err = pin_tools(unpinned, {"nosuch": "http://127.0.0.1:9/mcp"})
    assert code == 2 and "nosuch" in err
