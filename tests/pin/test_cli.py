"""`mcpfleet pin` on fixture catalogs against a real registry: pins written where they belong, moved tags
caught by --check, and nothing half-written when any image cannot be resolved."""

from __future__ import annotations

import datetime
import difflib
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.cli.main import app
from tests.examples.running import free_port
from tests.pin.registry import Registry, build_image

pytestmark = pytest.mark.slow

runner = CliRunner()

ENTRY = """\
# yaml-language-server: $schema=../schema.json
name: {name}
title: {title}
description: A server of the pin tests.
version: 1.0.0
owner:
  team: platform
  contact: platform@example.com
repository:
  url: https://github.com/example/{name}
  source: github
image:
  repository: {repository}
  tag: {tag}  # as published
# The container arguments follow the image.
args: ["serve"]
transport:
  type: streamable-http
  port: 8080
environments:
  dev: {{}}
{extra}"""


def entry(name: str, repository: str, tag: str, extra: str = "  prod: {}\n") -> str:
    """An entry as a person writes it; the tag quoted (YAML reads 1.0 as a number)."""
    quoted = tag if tag.startswith('"') else f'"{tag}"'
    return ENTRY.format(name=name, title=name.title(), repository=repository, tag=quoted, extra=extra)


def write_catalog(root: Path, **entries: str) -> Path:
    servers = root / "catalog" / "servers"
    servers.mkdir(parents=True)
    for name, text in entries.items():
        (servers / f"{name}.yaml").write_text(text, encoding="utf-8")
    return root / "catalog"


def snapshot(catalog: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((catalog / "servers").glob("*.yaml"))}


def pin(catalog: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["pin", "--catalog", str(catalog), *args])
    return result.exit_code, result.stdout, result.stderr


def added_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return [d[2:] for d in diff if d.startswith("- ")], [d[2:] for d in diff if d.startswith("+ ")]


def days() -> set[str]:
    """Today in UTC, and tomorrow in case the run straddles midnight."""
    today = datetime.datetime.now(datetime.UTC).date()
    return {today.isoformat(), (today + datetime.timedelta(days=1)).isoformat()}


def test_pin_writes_digests_then_check_passes(registry: Registry, tmp_path: Path) -> None:
    alpha = build_image(tmp_path, "alpha 1", platforms=("amd64", "arm64"))
    beta = build_image(tmp_path, "beta 1")
    registry.push(alpha, "cli/alpha", "1.0")
    registry.push(beta, "cli/beta", "2.0")
    catalog = write_catalog(
        tmp_path,
        alpha=entry("alpha", f"{registry.host}/cli/alpha", "1.0"),
        beta=entry("beta", f"{registry.host}/cli/beta", "2.0"),
        # Not in prod: `pin --env prod` leaves it alone.
        gamma=entry("gamma", f"{registry.host}/cli/gamma", "0.1", extra=""),
    )
    before = snapshot(catalog)

    code, out, err = pin(catalog, "--env", "prod", "--cacert", str(registry.cacert))
    assert code == 0, out + err
    assert "2 images: 2 pinned" in out
    after = snapshot(catalog)
    assert after["gamma.yaml"] == before["gamma.yaml"]
    for name, built, tag in (("alpha", alpha, "1.0"), ("beta", beta, "2.0")):
        assert built.digest in out
        removed, added = added_lines(before[f"{name}.yaml"], after[f"{name}.yaml"])
        assert removed == []
        assert added[0] == f"  digest: {built.digest}"
        source = re.fullmatch(r"  digestSource: (https://\S+)#resolved-(\d{4}-\d\d-\d\d)", added[1])
        assert source is not None, added
        assert source.group(1) == f"https://{registry.host}/v2/cli/{name}/manifests/{tag}"
        assert source.group(2) in days()
        assert len(added) == 2
        # The comment below the image block is still below the pin.
        lines = after[f"{name}.yaml"].splitlines()
        assert (
            lines[lines.index(f'  tag: "{tag}"  # as published') + 3]
            == "# The container arguments follow the image."
        )
    pinned = load_catalog(catalog).by_name()
    assert pinned["alpha"].image.digest == alpha.digest and pinned["beta"].image.digest == beta.digest

    code, out, err = pin(catalog, "--env", "prod", "--check", "--cacert", str(registry.cacert))
    assert code == 0, out + err
    assert "2 images: 2 ok" in out
    assert snapshot(catalog) == after

    code, out, _ = pin(catalog, "--env", "prod", "--cacert", str(registry.cacert))
    assert code == 0 and "2 unchanged" in out and "nothing to write" in out
    assert snapshot(catalog) == after


def test_check_catches_a_moved_tag_and_pin_moves_the_pin(registry: Registry, tmp_path: Path) -> None:
    first = build_image(tmp_path, "release 1")
    registry.push(first, "cli/moving", "stable")
    catalog = write_catalog(tmp_path, moving=entry("moving", f"{registry.host}/cli/moving", "stable"))
    cacert = ("--cacert", str(registry.cacert))
    assert pin(catalog, "--env", "prod", *cacert)[0] == 0

    # The publisher pushes another image under the same tag.
    second = build_image(tmp_path, "release 2, same tag")
    assert registry.push(second, "cli/moving", "stable") == second.digest != first.digest
    pinned = snapshot(catalog)

    code, out, err = pin(catalog, "--env", "prod", "--check", *cacert)
    assert code == 1
    assert f"moving: {registry.host}/cli/moving:stable pinned {first.digest}, now {second.digest}" in err, err
    assert "1 moved" in out
    assert snapshot(catalog) == pinned  # --check never writes

    code, out, err = pin(catalog, "--env", "prod", *cacert)
    assert code == 0, out + err
    assert f"{first.digest} -> {second.digest}" in out
    assert load_catalog(catalog).by_name()["moving"].image.digest == second.digest
    assert pin(catalog, "--env", "prod", "--check", *cacert)[0] == 0


def test_an_environment_override_is_pinned_in_its_environment(registry: Registry, tmp_path: Path) -> None:
    stable = build_image(tmp_path, "stable")
    candidate = build_image(tmp_path, "candidate")
    registry.push(stable, "cli/over", "1.0")
    registry.push(candidate, "cli/over", "1.1")
    prod = '  prod:\n    image:\n      tag: "1.1"\n    # Prod scales out.\n    scaling: {replicas: 2}\n'
    catalog = write_catalog(tmp_path, over=entry("over", f"{registry.host}/cli/over", '"1.0"', extra=prod))
    before = snapshot(catalog)["over.yaml"]

    assert pin(catalog, "--env", "prod", "--cacert", str(registry.cacert))[0] == 0
    after = snapshot(catalog)["over.yaml"]
    removed, added = added_lines(before, after)
    assert removed == []
    assert added[0] == f"      digest: {candidate.digest}"
    assert added[1].startswith(f"      digestSource: https://{registry.host}/v2/cli/over/manifests/1.1#")
    server = load_catalog(catalog).by_name()["over"]
    assert server.image.digest is None  # dev's image is not prod's
    override = server.environments["prod"].image
    assert override is not None and override.digest == candidate.digest

    assert pin(catalog, "--env", "dev", "--cacert", str(registry.cacert))[0] == 0
    server = load_catalog(catalog).by_name()["over"]
    assert server.image.digest == stable.digest


def test_dry_run_shows_the_change_and_writes_nothing(registry: Registry, tmp_path: Path) -> None:
    built = build_image(tmp_path, "dry")
    registry.push(built, "cli/dry", "1")
    catalog = write_catalog(tmp_path, dry=entry("dry", f"{registry.host}/cli/dry", '"1"'))
    before = snapshot(catalog)
    code, out, err = pin(catalog, "--env", "dev", "--dry-run", "--cacert", str(registry.cacert))
    assert code == 0, out + err
    assert f"+  digest: {built.digest}" in out
    assert "dry run: 1 file would change, none written" in out
    assert snapshot(catalog) == before


def test_one_unresolvable_image_means_nothing_is_written(registry: Registry, tmp_path: Path) -> None:
    registry.push(build_image(tmp_path, "good"), "cli/good", "1.0")
    closed = f"127.0.0.1:{free_port()}"
    catalog = write_catalog(
        tmp_path,
        good=entry("good", f"{registry.host}/cli/good", "1.0"),
        missing=entry("missing", f"{registry.host}/cli/good", "9.9"),
        offline=entry("offline", f"{closed}/cli/offline", "1.0"),
    )
    before = snapshot(catalog)
    code, out, err = pin(catalog, "--env", "prod", "--cacert", str(registry.cacert), "--timeout", "3")
    assert code == 1
    assert re.search(r"missing +failed +\S+/cli/good:9\.9: tag 9\.9 not found", out), out
    assert re.search(rf"offline +failed +{closed}/cli/offline:1\.0: cannot connect to {closed}", out), out
    assert "error: not resolved, so nothing written: missing, offline" in err
    assert "Traceback" not in out + err
    assert snapshot(catalog) == before


def test_pin_through_the_anonymous_token_flow(token_registry: Registry, tmp_path: Path) -> None:
    built = build_image(tmp_path, "public", platforms=("amd64", "arm64"))
    token_registry.push(built, "pin/cli", "1.0")
    catalog = write_catalog(tmp_path, public=entry("public", f"{token_registry.host}/pin/cli", "1.0"))
    code, out, err = pin(catalog, "--env", "prod", "--cacert", str(token_registry.cacert))
    assert code == 0, out + err
    assert load_catalog(catalog).by_name()["public"].image.digest == built.digest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tools",), "--tools needs the gateway's URL"),
        (("--tools", "--endpoint", "http://127.0.0.1:9", "--check"), "mcpfleet verify"),
        (("--endpoint", "http://127.0.0.1:9"), "go with --tools"),
        (("--check", "--dry-run"), "--check never writes"),
    ],
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    catalog = write_catalog(tmp_path, alpha=entry("alpha", "ghcr.io/example/alpha", "1.0"))
    code, _, err = pin(catalog, "--env", "prod", *args)
    assert code == 2
    # typer draws the message in a box and wraps it: compare the words only.
    assert message in " ".join(re.sub("[\u2500-\u257f]", " ", err).split())


def test_an_invalid_catalog_is_refused_before_any_request(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path, alpha=entry("alpha", "ghcr.io/example/alpha", "1.0") + "colour: blue\n")
    code, _, err = pin(catalog, "--env", "prod")
    assert code == 1
    assert "alpha.yaml" in err and "colour" in err
