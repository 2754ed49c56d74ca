"""How `mcpfleet dev` decides what runs here: from the catalog's packages, with the runtimes it is given."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.dev.launch import Launch, Tools, base_environment, child_environment, plan_launches
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.stacks.loader import load_stack_config
from tests.conftest import REPO, minimal_server

NPX = "/opt/node/bin/npx"
UVX = "/opt/uv/bin/uvx"
PYTHON = "/opt/python/bin/python"
NO_UVX = Tools(npx=NPX, uvx=None, node=None, python=PYTHON)
EVERY_RUNTIME = Tools(npx=NPX, uvx=UVX, node=None, python=PYTHON)
SECRETS = (
    "BRAVE_API_KEY",
    "CONTEXT7_API_KEY",
    "GRAFANA_SERVICE_ACCOUNT_TOKEN",
    "NOTION_TOKEN",
    "DATABASE_URI",
    "REDIS_PWD",
)


def fleet_of(catalog: Path, env: str = "local") -> Fleet:
    _, settings = load_stack_config(REPO / "stacks", env)
    return resolve_fleet(load_catalog(catalog), env, settings, f"stacks/Pulumi.{env}.yaml")  # type: ignore[arg-type]


def ports() -> Callable[[], int]:
    counter: Iterator[int] = itertools.count(41000)
    return lambda: next(counter)


def plan(
    fleet: Fleet, tools: Tools = NO_UVX, environ: dict[str, str] | None = None, busy: set[int] | None = None
) -> tuple[dict[str, Launch], dict[str, str]]:
    launches, skips = plan_launches(
        fleet, tools, environ or {}, allocate_port=ports(), port_free=lambda port: port not in (busy or set())
    )
    return {launch.server: launch for launch in launches}, {skip.server: skip.reason for skip in skips}


def test_the_sample_catalog_in_local() -> None:
    launches, skips = plan(fleet_of(REPO / "catalog"))
    assert sorted(launches) == [
        "everything",
        "filesystem",
        "kubernetes",
        "memory",
        "playwright",
        "sequential-thinking",
    ]
    assert skips == {
        "brave-search": "needs secret BRAVE_API_KEY (not set here)",
        "context7": "needs secret CONTEXT7_API_KEY (not set here)",
        "fetch": "pypi package mcp-server-fetch==2026.10.24 needs uvx (pip install uv), not found",
        "github": (
            "no published package in its catalog entry; it runs only from its image"
            " ghcr.io/github/github-mcp-server:v1.11.0"
        ),
        "grafana": "needs secret GRAFANA_SERVICE_ACCOUNT_TOKEN (not set here)",
        "notion": "needs secret NOTION_TOKEN (not set here)",
        "postgres": "needs secret DATABASE_URI (not set here)",
        "redis": "needs secret REDIS_PWD (not set here)",
        "terraform": (
            "no published package in its catalog entry; it runs only from its image"
            " docker.io/hashicorp/terraform-mcp-server:0.5.2"
        ),
        "time": "pypi package mcp-server-time==2026.10.19 needs uvx (pip install uv), not found",
    }


def test_a_port_in_the_environment_moves_to_the_local_one() -> None:
    launches, _ = plan(fleet_of(REPO / "catalog"))
    everything = launches["everything"]
    assert everything.argv == [
        NPX,
        "-y",
        "@modelcontextprotocol/server-everything@2026.8.31",
        "streamableHttp",
    ]
    assert everything.env == {"PORT": str(everything.port)}
    assert everything.path == "/mcp"
    playwright = launches["playwright"]
    assert playwright.env["PLAYWRIGHT_MCP_PORT"] == str(playwright.port)
    assert playwright.env["PLAYWRIGHT_MCP_HOST"] == "127.0.0.1"


def test_listening_options_come_from_the_container_args() -> None:
    launches, _ = plan(fleet_of(REPO / "catalog"))
    kubernetes = launches["kubernetes"]
    assert kubernetes.argv == [
        NPX,
        "-y",
        "kubernetes-mcp-server@0.0.66",
        "--read-only",
        "--port",
        str(kubernetes.port),
    ]


def test_stdio_servers_run_behind_the_bridge_their_image_names() -> None:
    launches, _ = plan(fleet_of(REPO / "catalog"))
    memory = launches["memory"]
    assert memory.argv == [
        NPX,
        "-y",
        "supergateway@3.4.3",
        "--stdio",
        f"{NPX} -y @modelcontextprotocol/server-memory@2026.8.31",
        "--outputTransport",
        "streamableHttp",
        "--port",
        str(memory.port),
        "--streamableHttpPath",
        "/mcp",
        "--healthEndpoint",
        "/healthz",
        "--stateful",
    ]
    assert memory.env == {"MEMORY_FILE_PATH": "/tmp/memory.jsonl"}


def test_with_uvx_and_the_secrets_everything_with_a_package_runs() -> None:
    environ = dict.fromkeys(SECRETS, "value-from-the-shell")
    launches, skips = plan(fleet_of(REPO / "catalog"), EVERY_RUNTIME, environ)
    assert set(skips) == {"github", "postgres", "terraform"}
    time = launches["time"]
    assert time.argv[:4] == [NPX, "-y", "supergateway@3.4.3", "--stdio"]
    assert time.argv[4] == f"{UVX} mcp-server-time==2026.10.19 --local-timezone UTC"
    grafana = launches["grafana"]
    assert grafana.argv == [UVX, "mcp-grafana==1.3.0", "--disable-write"]
    # mcp-grafana takes no port option in its container args: it listens on its catalog port itself.
    assert grafana.port == 8000
    assert "listens on its fixed port 8000" in grafana.notes
    # Secret values stay in the shell's environment: the plan names them only.
    assert grafana.secrets == ["GRAFANA_SERVICE_ACCOUNT_TOKEN"]
    assert "value-from-the-shell" not in repr(launches)


def test_a_fixed_port_in_use_is_a_reason_to_skip() -> None:
    environ = {"GRAFANA_SERVICE_ACCOUNT_TOKEN": "x"}
    _, skips = plan(fleet_of(REPO / "catalog"), EVERY_RUNTIME, environ, busy={8000})
    assert skips["grafana"] == (
        "listens on port 8000 (its catalog entry gives no way to move it), which is in use here"
    )


def test_without_npx_npm_packages_cannot_run() -> None:
    launches, skips = plan(fleet_of(REPO / "catalog"), Tools(npx=None, uvx=None, node=None))
    assert launches == {}
    assert skips["everything"] == (
        "npm package @modelcontextprotocol/server-everything@2026.8.31 needs npx (Node.js and npm), not found"
    )


def test_the_examples_catalog_runs_its_servers_from_this_python() -> None:
    launches, skips = plan(fleet_of(REPO / "examples" / "catalog"))
    assert skips == {}
    assert sorted(launches) == ["everything", "notes", "text", "units"]
    notes = launches["notes"]
    assert notes.argv == [
        PYTHON,
        "-m",
        "examples.servers.notes",
        "--host",
        "127.0.0.1",
        "--port",
        str(notes.port),
    ]


def entry(**fields: Any) -> dict[str, Any]:
    return minimal_server("alpha", **fields)


def test_a_python_package_must_be_installed_at_its_version(catalog_dir: Callable[..., Path]) -> None:
    package = {"registryType": "pypi", "identifier": "mcpfleet", "version": "9.9.9", "runtimeHint": "python"}
    _, skips = plan(fleet_of(catalog_dir(alpha=entry(packages=[package]))))
    assert skips == {
        "alpha": "pypi package mcpfleet==9.9.9 runs from this Python, but 0.1.0 is installed here"
    }


def test_the_first_runnable_package_wins(catalog_dir: Callable[..., Path]) -> None:
    packages = [
        {"registryType": "oci", "identifier": "ghcr.io/example/alpha", "version": "1.0.0"},
        {"registryType": "pypi", "identifier": "alpha-mcp", "version": "1.0.0", "runtimeHint": "uvx"},
        {
            "registryType": "npm",
            "identifier": "alpha-mcp",
            "version": "1.0.0",
            "packageArguments": ["--port=8080"],
        },
    ]
    launches, _ = plan(fleet_of(catalog_dir(alpha=entry(packages=packages))))
    alpha = launches["alpha"]
    assert alpha.argv == [NPX, "-y", "alpha-mcp@1.0.0", f"--port={alpha.port}"]
    _, skips = plan(fleet_of(catalog_dir(alpha=entry(packages=packages[:2]))))
    assert skips["alpha"] == (
        "oci package ghcr.io/example/alpha:1.0.0 needs a container engine;"
        " pypi package alpha-mcp==1.0.0 needs uvx (pip install uv), not found"
    )


def test_a_stdio_image_that_is_not_the_bridge(catalog_dir: Callable[..., Path]) -> None:
    server = entry(
        transport={"type": "stdio", "port": 8000, "command": ["alpha-mcp"]},
        packages=[{"registryType": "npm", "identifier": "alpha-mcp", "version": "1.0.0"}],
    )
    _, skips = plan(fleet_of(catalog_dir(alpha=server)))
    assert (
        skips["alpha"]
        == "stdio server on image ghcr.io/example/alpha, not the Supergateway bridge: no bridge to run it"
    )


def test_a_server_sees_only_basics_its_secrets_and_its_settings(tmp_path: Path) -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "npm_config_cache": "/cache",
        "BRAVE_API_KEY": "brave",
        "GITHUB_TOKEN": "not for servers",
        "AWS_SECRET_ACCESS_KEY": "nor this",
    }
    assert base_environment(environ) == {"PATH": "/usr/bin", "HOME": "/home/me", "npm_config_cache": "/cache"}
    launch = Launch("brave", "streamable-http", ["x"], {"PORT": "1"}, 1, "/mcp", ["BRAVE_API_KEY"])
    node = tmp_path / "node" / "bin" / "node"
    env = child_environment(launch, environ, Tools(npx=NPX, uvx=None, node=node))
    assert env == {
        "PATH": f"{node.parent}:/usr/bin",
        "HOME": "/home/me",
        "npm_config_cache": "/cache",
        "BRAVE_API_KEY": "brave",
        "PORT": "1",
    }


@pytest.mark.parametrize(("tag", "version"), [("3.4.3", "3.4.3"), ("3.4.3-uvx", "3.4.3")])
def test_bridge_versions_follow_the_image_tag(
    catalog_dir: Callable[..., Path], tag: str, version: str
) -> None:
    server = entry(
        image={"repository": "docker.io/supercorp/supergateway", "tag": tag},
        transport={"type": "stdio", "port": 8000, "command": ["alpha-mcp"]},
        packages=[{"registryType": "npm", "identifier": "alpha-mcp", "version": "1.0.0"}],
        stateless=True,
    )
    launches, _ = plan(fleet_of(catalog_dir(alpha=server)))
    assert launches["alpha"].argv[:3] == [NPX, "-y", f"supergateway@{version}"]
    assert "--stateful" not in launches["alpha"].argv


def test_container_paths_missing_here_are_pointed_out(
    catalog_dir: Callable[..., Path], tmp_path: Path
) -> None:
    missing, present = tmp_path / "data", tmp_path
    package = {
        "registryType": "npm",
        "identifier": "alpha-mcp",
        "version": "1.0.0",
        "packageArguments": [str(missing), str(present)],
    }
    launches, _ = plan(fleet_of(catalog_dir(alpha=entry(packages=[package]))))
    assert [note for note in launches["alpha"].notes if "path" in note] == [
        f"argument {missing} is a path in the container; it does not exist here"
    ]
