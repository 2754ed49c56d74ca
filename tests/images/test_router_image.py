"""The MCP router's image: a pinned base, a non-root user that matches the Deployment, the router's own
files and exactly the dependencies the tests ran (installed and run here from the pinned list)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from components.manifests.gateway import ROUTER_METRICS_PORT, ROUTER_PORT
from components.manifests.router import ROUTER_UID, router_objects
from scripts import router_requirements
from tests.components.edge import edge_fleet

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "images" / "router" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_the_base_image_is_pinned_by_digest_and_says_where_the_digest_came_from() -> None:
    [base] = [rest for keyword, rest in instructions() if keyword == "ARG" and rest.startswith("BASE=")]
    assert re.fullmatch(r"BASE=docker\.io/library/python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base)
    assert [rest for keyword, rest in instructions() if keyword == "FROM"] == ["${BASE} AS build", "${BASE}"]
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "docker-library/repo-info" in text and "repos/python/remote/3.11-slim-bookworm.md" in text


def test_it_runs_as_the_deployments_user_on_the_deployments_ports_and_command() -> None:
    steps = dict(reversed(instructions()))  # the last of each instruction
    assert steps["USER"] == f"{ROUTER_UID}:{ROUTER_UID}"
    assert f"--uid {ROUTER_UID} --gid {ROUTER_UID}" in next(r for k, r in instructions() if "useradd" in r)
    assert steps["EXPOSE"].split() == [str(ROUTER_PORT), str(ROUTER_METRICS_PORT)]
    deployment = next(
        o
        for o in router_objects(edge_fleet("prod"), "{}", "keys", None).values()
        if o["kind"] == "Deployment"
    )
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert json.loads(steps["ENTRYPOINT"]) == container["command"]
    # Nothing written at run time: bytecode compiled at build, none written after.
    assert "compileall" in DOCKERFILE.read_text(encoding="utf-8")
    assert "PYTHONDONTWRITEBYTECODE=1" in steps["ENV"]


def router_imports_outside_the_router() -> set[str]:
    modules = set()
    for path in (REPO / "mcpfleet" / "router").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mcpfleet"):
                modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules.update(a.name for a in node.names if a.name.startswith("mcpfleet"))
    return {m for m in modules if not m.startswith("mcpfleet.router")}


def test_the_image_carries_every_module_of_ours_the_router_imports() -> None:
    copied = [
        rest.split() for keyword, rest in instructions() if keyword == "COPY" and rest.startswith("mcpfleet")
    ]
    sources = {source for *paths, _ in copied for source in paths}
    assert "mcpfleet/router" in sources and "mcpfleet/__init__.py" in sources
    for module in router_imports_outside_the_router():
        assert f"{module.replace('.', '/')}.py" in sources, module


def test_the_pinned_requirements_are_what_the_tests_ran() -> None:
    committed = (REPO / "images" / "router" / "requirements.txt").read_text(encoding="utf-8")
    assert committed == router_requirements.render(), "regenerate: python -m scripts.router_requirements"
    pins = [line for line in committed.splitlines() if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[a-z0-9-]+==[A-Za-z0-9.+-]+", pin) for pin in pins)


@pytest.mark.slow
def test_the_pinned_list_installs_alone_and_runs_the_router(tmp_path: Path) -> None:
    """What the Dockerfile's build stage does, on this machine: the list, without resolving anything, is
    complete (pip check) and the router starts from the files the image copies."""
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    requirements = REPO / "images" / "router" / "requirements.txt"
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*install, "--requirement", str(requirements)], check=True, timeout=900)
    subprocess.run([str(python), "-m", "pip", "check"], check=True, timeout=120)
    app = tmp_path / "app" / "mcpfleet"
    shutil.copytree(
        REPO / "mcpfleet" / "router", app / "router", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("__init__.py", "errors.py"):
        shutil.copy(REPO / "mcpfleet" / name, app / name)
    result = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "import mcpfleet.router.app, mcpfleet.router.serve, uvloop, httptools; "
            "from mcpfleet.router.__main__ import main; sys.argv = ['router', '--help']; main()",
            str(app.parent),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--session-keys" in result.stdout
