"""How `mcpfleet dev` decides what runs here: from the catalog's packages, with the runtimes it is given,
and which servers it skips (with the reason) because it knows they cannot run here. Fixture catalogs of
the tests' own, shaped like the published servers they stand for."""

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
BRIDGE = {"repository": "docker.io/supercorp/supergateway", "tag": "3.4.3"}
KUBERNETES_READ = {"read": [{"apiGroups": [""], "resources": ["pods", "namespaces"]}]}
KUBECONFIG_TEXT = """\
apiVersion: v1
kind: Config
current-context: kind-mcpfleet
contexts:
  - name: kind-mcpfleet
    context: {cluster: kind-mcpfleet, user: kind-mcpfleet}
"""


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


def npm(identifier: str, *arguments: str) -> dict[str, Any]:
    return {
        "registryType": "npm",
        "identifier": identifier,
        "version": "1.0.0",
        "runtimeHint": "npx",
        "packageArguments": list(arguments),
    }


def uvx(identifier: str, *arguments: str) -> dict[str, Any]:
    return {
        "registryType": "pypi",
        "identifier": identifier,
        "version": "1.0.0",
        "runtimeHint": "uvx",
        "packageArguments": list(arguments),
    }


def entry(name: str = "alpha", **fields: Any) -> dict[str, Any]:
    return minimal_server(name, **fields)


# Shaped like server-everything (the port in an environment variable), Playwright (port and host in
# variables), the Kubernetes server (port and host as container args), the memory server (stdio behind
# the bridge), the time server (a PyPI package behind the bridge's uvx image) and mcp-grafana (no way
# to move its port).
SHAPES: dict[str, dict[str, Any]] = {
    "env-port": entry(
        "env-port",
        packages=[npm("env-port-mcp", "streamableHttp")],
        transport={"type": "streamable-http", "port": 3001, "path": "/mcp"},
        env={"PORT": "3001"},
    ),
    "env-host": entry(
        "env-host",
        packages=[npm("env-host-mcp", "--headless")],
        transport={"type": "streamable-http", "port": 8931, "path": "/mcp"},
        env={"HOST_MCP_PORT": "8931", "HOST_MCP_HOST": "0.0.0.0"},
    ),
    "arg-port": entry(
        "arg-port",
        args=["--port", "8080", "--read-only", "--host=0.0.0.0"],
        packages=[npm("arg-port-mcp", "--read-only")],
    ),
    "stdio-npm": entry(
        "stdio-npm",
        image=BRIDGE,
        packages=[npm("stdio-npm-mcp")],
        transport={"type": "stdio", "port": 8000, "command": ["npx", "-y", "stdio-npm-mcp@1.0.0"]},
        env={"MEMORY_FILE_PATH": "/tmp/memory.jsonl"},
    ),
    "stdio-uvx": entry(
        "stdio-uvx",
        image={**BRIDGE, "tag": "3.4.3-uvx"},
        packages=[uvx("stdio-uvx-mcp", "--local-timezone", "UTC")],
        transport={"type": "stdio", "port": 8000, "command": ["uvx", "stdio-uvx-mcp==1.0.0"]},
        stateless=True,
    ),
    "fixed-port": entry(
        "fixed-port",
        packages=[uvx("fixed-port-mcp", "--disable-write")],
        transport={"type": "streamable-http", "port": 8000, "path": "/mcp"},
        secrets=[{"key": "fixed/token", "env": "FIXED_TOKEN"}],
    ),
}


@pytest.fixture
def shapes(catalog_dir: Callable[..., Path]) -> Fleet:
    # File names are the servers' names, hyphens included.
    return fleet_of(catalog_dir(**SHAPES))


def test_a_port_in_the_environment_moves_to_the_local_one(shapes: Fleet) -> None:
    launches, _ = plan(shapes)
    env_port = launches["env-port"]
    assert env_port.argv == [NPX, "-y", "env-port-mcp@1.0.0", "streamableHttp"]
    assert env_port.env == {"PORT": str(env_port.port)} and env_port.port != 3001
    assert env_port.path == "/mcp"
    env_host = launches["env-host"]
    assert env_host.env == {"HOST_MCP_PORT": str(env_host.port), "HOST_MCP_HOST": "127.0.0.1"}


def test_listening_options_come_from_the_container_args(shapes: Fleet) -> None:
    launches, _ = plan(shapes)
    arg_port = launches["arg-port"]
    assert arg_port.argv == [
        NPX,
        "-y",
        "arg-port-mcp@1.0.0",
        "--read-only",
        "--port",
        str(arg_port.port),
        "--host",
        "127.0.0.1",
    ]


def test_stdio_servers_run_behind_the_bridge_their_image_names(shapes: Fleet) -> None:
    launches, _ = plan(shapes)
    memory = launches["stdio-npm"]
    assert memory.argv == [
        NPX,
        "-y",
        "supergateway@3.4.3",
        "--stdio",
        f"{NPX} -y stdio-npm-mcp@1.0.0",
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


def test_with_uvx_and_the_secret_every_package_runs(shapes: Fleet) -> None:
    launches, skips = plan(shapes, EVERY_RUNTIME, {"FIXED_TOKEN": "value-from-the-shell"})
    assert skips == {}
    time = launches["stdio-uvx"]
    assert time.argv[:4] == [NPX, "-y", "supergateway@3.4.3", "--stdio"]
    assert time.argv[4] == f"{UVX} stdio-uvx-mcp==1.0.0 --local-timezone UTC"
    assert "--stateful" not in time.argv
    fixed = launches["fixed-port"]
    assert fixed.argv == [UVX, "fixed-port-mcp==1.0.0", "--disable-write"]
    # No port option in its container args: it listens on its catalog port itself.
    assert fixed.port == 8000
    assert "listens on its fixed port 8000" in fixed.notes
    # Secret values stay in the shell's environment: the plan names them only.
    assert fixed.secrets == ["FIXED_TOKEN"]
    assert "value-from-the-shell" not in repr(launches)


def test_a_fixed_port_in_use_is_a_reason_to_skip(shapes: Fleet) -> None:
    _, skips = plan(shapes, EVERY_RUNTIME, {"FIXED_TOKEN": "x"}, busy={8000})
    assert skips == {
        "fixed-port": "listens on port 8000 (its catalog entry gives no way to move it), which is in use here"
    }


# What dev skips before starting anything, one line each.


def test_a_secret_not_set_here(shapes: Fleet) -> None:
    _, skips = plan(shapes, EVERY_RUNTIME, {"FIXED_TOKEN": ""})
    assert skips == {"fixed-port": "needs secret FIXED_TOKEN (not set here)"}


def test_without_uvx_pypi_packages_cannot_run(shapes: Fleet) -> None:
    _, skips = plan(shapes, NO_UVX, {"FIXED_TOKEN": "x"})
    assert skips == {
        "stdio-uvx": "pypi package stdio-uvx-mcp==1.0.0 needs uvx (pip install uv), not found",
        "fixed-port": "pypi package fixed-port-mcp==1.0.0 needs uvx (pip install uv), not found",
    }


def test_without_npx_npm_packages_and_the_bridge_cannot_run(shapes: Fleet) -> None:
    launches, skips = plan(shapes, Tools(npx=None, uvx=UVX, node=None), {"FIXED_TOKEN": "x"})
    assert sorted(launches) == ["fixed-port"]
    assert skips["env-port"] == "npm package env-port-mcp@1.0.0 needs npx (Node.js and npm), not found"
    assert skips["stdio-uvx"] == (
        "the Supergateway bridge is an npm package and needs npx (Node.js and npm), not found"
    )


def test_no_package_at_all(catalog_dir: Callable[..., Path]) -> None:
    _, skips = plan(fleet_of(catalog_dir(alpha=entry())))
    assert skips == {
        "alpha": "no published package in its catalog entry; it runs only from its image"
        " ghcr.io/example/alpha:1.2.3"
    }


@pytest.mark.parametrize("argument", ["{path}", "--root={path}"])
def test_a_path_of_the_container_missing_here(
    catalog_dir: Callable[..., Path], tmp_path: Path, argument: str
) -> None:
    missing = tmp_path / "data"
    server = entry(packages=[npm("alpha-mcp", str(tmp_path), argument.format(path=missing))])
    launches, skips = plan(fleet_of(catalog_dir(alpha=server)))
    assert launches == {}
    assert skips == {"alpha": f"argument {missing} is a path in its container, which does not exist here"}
    # The same entry runs where the path exists (a developer who made it).
    missing.mkdir()
    launches, skips = plan(fleet_of(catalog_dir(alpha=server)))
    assert skips == {} and sorted(launches) == ["alpha"]


def test_the_mcp_path_is_no_file(catalog_dir: Callable[..., Path]) -> None:
    server = entry(packages=[npm("alpha-mcp", "--path", "/mcp")])
    launches, skips = plan(fleet_of(catalog_dir(alpha=server)))
    assert skips == {} and launches["alpha"].argv[-2:] == ["--path", "/mcp"]


def kubernetes_reader(catalog_dir: Callable[..., Path]) -> Fleet:
    server = entry(
        "kube",
        args=["--port", "8080", "--read-only"],
        packages=[npm("kube-mcp", "--read-only")],
        kubernetesAccess=KUBERNETES_READ,
    )
    return fleet_of(catalog_dir(kube=server, alpha=entry(packages=[npm("alpha-mcp")])))


def test_a_kubernetes_reader_without_a_kubeconfig(catalog_dir: Callable[..., Path], tmp_path: Path) -> None:
    fleet = kubernetes_reader(catalog_dir)
    launches, skips = plan(fleet, environ={"HOME": str(tmp_path)})
    assert sorted(launches) == ["alpha"]
    assert skips == {
        "kube": "reads the Kubernetes API and has no kubeconfig here (KUBECONFIG is unset and"
        " ~/.kube/config is missing)"
    }
    missing = f"{tmp_path / 'a'}:{tmp_path / 'b'}"
    _, skips = plan(fleet, environ={"HOME": str(tmp_path), "KUBECONFIG": missing})
    assert skips == {
        "kube": "reads the Kubernetes API and has no kubeconfig here"
        f" (none of the files of KUBECONFIG={missing} exists)"
    }


def test_a_kubeconfig_without_a_current_context(catalog_dir: Callable[..., Path], tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    _, skips = plan(kubernetes_reader(catalog_dir), environ={"HOME": str(tmp_path)})
    assert skips == {
        "kube": "reads the Kubernetes API and ~/.kube/config sets no current context"
        " (kubectl config use-context NAME)"
    }
    (tmp_path / ".kube" / "config").write_text("current-context: [unclosed\n")
    _, skips = plan(kubernetes_reader(catalog_dir), environ={"HOME": str(tmp_path)})
    assert skips == {
        "kube": f"reads the Kubernetes API and its kubeconfig {tmp_path / '.kube' / 'config'}"
        " does not read as YAML"
    }


def test_a_kubernetes_reader_reads_the_current_context(
    catalog_dir: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(KUBECONFIG_TEXT)
    launches, skips = plan(kubernetes_reader(catalog_dir), environ={"HOME": str(tmp_path)})
    assert skips == {}
    kube = launches["kube"]
    assert kube.notes[0] == (
        "reads the cluster of context kind-mcpfleet (~/.kube/config) with that context's rights, not only"
        " what its kubernetesAccess grants in a cluster"
    )
    # Found through HOME, which every server inherits: nothing more to pass.
    assert kube.inherited == []


def test_kubeconfig_goes_to_the_kubernetes_reader_alone(
    catalog_dir: Callable[..., Path], tmp_path: Path
) -> None:
    empty, config = tmp_path / "empty.yaml", tmp_path / "config.yaml"
    empty.write_text("apiVersion: v1\nkind: Config\n")
    config.write_text(KUBECONFIG_TEXT)
    environ = {"PATH": "/usr/bin", "KUBECONFIG": f"{tmp_path / 'gone'}:{empty}:{config}"}
    launches, skips = plan(kubernetes_reader(catalog_dir), environ=environ)
    assert skips == {}
    assert launches["kube"].inherited == ["KUBECONFIG"]
    assert child_environment(launches["kube"], environ, NO_UVX)["KUBECONFIG"] == environ["KUBECONFIG"]
    assert "KUBECONFIG" not in child_environment(launches["alpha"], environ, NO_UVX)


def test_the_examples_catalog_runs_its_servers_from_this_python() -> None:
    launches, skips = plan(fleet_of(REPO / "examples" / "catalog"))
    assert skips == {}
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
        "KUBECONFIG": "/home/me/.kube/other",
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
