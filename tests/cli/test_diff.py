"""`mcpfleet diff` against a real git history in a temporary repository, and its pure logic."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mcpfleet.cli.diff import extract_inside
from mcpfleet.cli.main import app
from mcpfleet.diff import Decommission, Snapshot, diff_environment, parse_decommission
from mcpfleet.errors import InvalidInput
from mcpfleet.model import ENVIRONMENTS
from tests.conftest import REPO, minimal_server

runner = CliRunner()
IN_PROD = ("fetch", "time")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    """A git repository holding a catalog of its own (fetch and time, in every environment) and a copy of
    the stacks, committed; the cwd meanwhile. The tests change and remove these two servers."""
    root = tmp_path / "repo"
    servers = root / "catalog" / "servers"
    servers.mkdir(parents=True)
    for name in IN_PROD:
        entry = minimal_server(
            name,
            resources={
                "requests": {"cpu": "100m", "memory": "192Mi"},
                "limits": {"cpu": "500m", "memory": "512Mi"},
            },
            environments={env: {} for env in ENVIRONMENTS},
        )
        (servers / f"{name}.yaml").write_text(yaml.safe_dump(entry, sort_keys=False), encoding="utf-8")
    shutil.copytree(REPO / "stacks", root / "stacks")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    previous = Path.cwd()
    os.chdir(root)
    yield root
    os.chdir(previous)


def edit(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["diff", *args])
    return result.exit_code, result.stdout, result.stderr


def test_no_change_is_said_plainly(repo: Path) -> None:
    code, out, err = invoke("--env", "dev", "--base", "main")
    assert code == 0, err
    assert out.startswith("## What this change does, against `main`")
    assert "### dev\n\nNo change." in out


def test_added_and_changed_servers_and_resources(repo: Path) -> None:
    fetch = repo / "catalog" / "servers" / "fetch.yaml"
    edit(
        fetch,
        resources={"requests": {"cpu": "100m", "memory": "192Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    )
    code, _, err = (
        runner.invoke(
            app,
            [
                "new",
                "weather",
                "--image",
                "ghcr.io/acme/weather-mcp:2.1.0",
                "--contact",
                "weather@acme.test",
                "--repository",
                "https://github.com/acme/weather-mcp",
            ],
        ).exit_code,
        "",
        "",
    )
    assert code == 0, err

    code, out, err = invoke("--env", "dev", "--env", "prod", "--base", "main")
    assert code == 0, err
    assert not out.startswith(">")  # nothing removed from prod: no warning
    assert "| `weather` | added | |" in out
    assert "| `fetch` | changed | `resources.limits.cpu`, `resources.limits.memory` |" in out
    dev, prod = out.split("### dev")[1].split("### prod")
    assert "weather" in dev and "weather" not in prod  # a new server runs in local and dev only

    code, text, err = invoke("--env", "dev", "--base", "main", "--json", "--out", "build/diff.json")
    assert code == 0 and text == ""
    data = json.loads((repo / "build" / "diff.json").read_text(encoding="utf-8"))
    servers = data["environments"]["dev"]["servers"]
    assert servers["added"] == ["weather"] and servers["removed"] == []
    assert servers["changed"] == {"fetch": ["resources.limits.cpu", "resources.limits.memory"]}
    resources = data["environments"]["dev"]["resources"]
    assert any("weather" in urn for urn in resources["added"])
    assert any("fetch" in urn and "Deployment" in urn for urn in resources["changed"])
    assert data["warning"] is False and data["unapprovedRemovals"] == []


def test_removing_a_server_from_prod_is_loud_and_refused(repo: Path) -> None:
    time = repo / "catalog" / "servers" / "time.yaml"
    edit(time, environments={"local": {}, "dev": {}, "staging": {}})
    (repo / "catalog" / "servers" / "fetch.yaml").unlink()  # deleting the entry is no way around it
    code, out, err = invoke("--env", "prod", "--base", "main")
    assert code == 1
    assert out.splitlines()[0] == "> [!CAUTION]"
    assert "REMOVES servers: `fetch` from prod (NO decommission marker), `time` from prod" in out
    assert "| `time` | **removed** | |" in out
    assert "'time' is removed from prod without a decommission marker" in err
    assert "catalog/servers/time.yaml" in err and "Traceback" not in out + err


def test_a_malformed_marker_names_the_file_and_field(repo: Path) -> None:
    time = repo / "catalog" / "servers" / "time.yaml"
    edit(time, environments={"local": {}, "dev": {}})
    text = time.read_text(encoding="utf-8") + "decommissioned: {environments: [prod]}\n"
    time.write_text(text, encoding="utf-8")
    code, _, err = invoke("--env", "prod", "--base", "main")
    assert code == 1 and "Traceback" not in err
    assert "time.yaml" in err and "decommissioned.reason" in err


def test_a_decommission_marker_makes_the_removal_deliberate(repo: Path) -> None:
    time = repo / "catalog" / "servers" / "time.yaml"
    edit(
        time,
        environments={"local": {}, "dev": {}, "staging": {}},
        decommissioned={"environments": ["prod"], "reason": "replaced by world-clock", "date": "2026-05-01"},
    )
    code, out, err = invoke("--env", "prod", "--base", "main")
    assert code == 0, err
    assert out.splitlines()[0] == "> [!CAUTION]"
    assert "`time` leaves prod: replaced by world-clock (decided 2026-05-01)" in out


def test_an_unknown_base_is_a_clear_error(repo: Path) -> None:
    code, out, err = invoke("--env", "dev", "--base", "no-such-branch")
    assert code == 1
    assert "no-such-branch" in err and "Traceback" not in out + err


def test_a_broken_base_catalog_is_named_by_its_revision(repo: Path) -> None:
    (repo / "catalog" / "servers" / "time.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "broken")
    git(repo, "checkout", "-q", "HEAD~1", "--", "catalog")
    code, _, err = invoke("--env", "dev", "--base", "main")
    assert code == 1 and "main:catalog/servers/time.yaml" in err and "invalid YAML" in err


def test_a_base_without_a_catalog_adds_everything(repo: Path) -> None:
    git(repo, "checkout", "-q", "--orphan", "empty")
    git(repo, "rm", "-rq", "--cached", ".")
    git(repo, "commit", "-q", "--allow-empty", "-m", "empty")
    code, out, err = invoke("--env", "dev", "--base", "empty", "--json")
    assert code == 0, err
    assert "time" in json.loads(out)["environments"]["dev"]["servers"]["added"]


# The pure logic, with the contract's edge cases.


def _snapshot(*names: str) -> Snapshot:
    return Snapshot(servers={name: {"image.tag": "1"} for name in names})


def test_only_protected_environments_need_a_marker() -> None:
    assert diff_environment("dev", _snapshot("a"), _snapshot(), {}).protected_removals == ()
    removal = diff_environment("prod", _snapshot("a"), _snapshot(), {}).protected_removals
    assert [(r.server, r.marker) for r in removal] == [("a", None)]


def test_a_marker_for_another_environment_does_not_count() -> None:
    staging_only = Decommission(frozenset({"staging"}), "gone", "2026-05-01")
    prod = Decommission(frozenset({"prod"}), "gone", "2026-05-01")
    assert (
        diff_environment("prod", _snapshot("a"), _snapshot(), {"a": staging_only})
        .protected_removals[0]
        .marker
        is None
    )
    assert (
        diff_environment("prod", _snapshot("a"), _snapshot(), {"a": prod}).protected_removals[0].marker
        == prod
    )


def test_parse_decommission() -> None:
    import datetime

    good = {
        "decommissioned": {"environments": ["prod"], "reason": " old ", "date": datetime.date(2026, 5, 1)}
    }
    assert parse_decommission(good) == (Decommission(frozenset({"prod"}), "old", "2026-05-01"), [])
    assert parse_decommission({"name": "x"}) == (None, [])
    marker, problems = parse_decommission(
        {"decommissioned": {"environments": ["qa"], "reason": "", "when": 1}}
    )
    assert marker is None
    assert [p.split(":")[0] for p in problems] == [
        "decommissioned.environments",
        "decommissioned.reason",
        "decommissioned.date",
        "decommissioned",
    ]


@pytest.mark.parametrize(("name", "link"), [("../outside", ""), ("/etc/evil", ""), ("catalog/l", "../../x")])
def test_a_base_revision_path_that_leaves_the_repository_is_refused(
    tmp_path: Path, name: str, link: str
) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        member = tarfile.TarInfo(name)
        if link:
            member.type, member.linkname = tarfile.SYMTYPE, link
        tar.addfile(member, io.BytesIO(b""))
    data.seek(0)
    with tarfile.open(fileobj=data) as tar, pytest.raises(InvalidInput, match="leaves the repository"):
        extract_inside(tar, tmp_path / "into")
    assert not (tmp_path / "into").exists() and not (tmp_path / "outside").exists()
