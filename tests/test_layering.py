"""The layering stays one-way: models know nothing of Pulumi, components nothing of the CLI or the plan."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PULUMI = ("pulumi", "pulumi_kubernetes", "pulumi_aws")
ABOVE_THE_PROGRAM = ("mcpfleet.plan", "mcpfleet.cli")
# The Pulumi program's components other than the gateway's.
PROGRAM_MODULES = (
    "program",
    "fleet",
    "server",
    "cluster",
    "mesh",
    "monitoring",
    "addons",
    "secrets",
    "namespaces",
    "kube",
)

# package (folder) -> import prefixes it must never use
FORBIDDEN = {
    "mcpfleet/catalog": (*PULUMI, "components", *ABOVE_THE_PROGRAM),
    "mcpfleet/stacks": (*PULUMI, "components", *ABOVE_THE_PROGRAM),
    "mcpfleet/fleet.py": (*PULUMI, "components", *ABOVE_THE_PROGRAM),
    # How every input problem is worded and placed: under the models and loaders that use it.
    "mcpfleet/errors.py": (*PULUMI, "components", *ABOVE_THE_PROGRAM, "mcpfleet.catalog", "mcpfleet.stacks"),
    "mcpfleet/messages.py": (
        *PULUMI,
        "components",
        *ABOVE_THE_PROGRAM,
        "mcpfleet.catalog",
        "mcpfleet.stacks",
    ),
    "mcpfleet/validation.py": (
        *PULUMI,
        "components",
        *ABOVE_THE_PROGRAM,
        "mcpfleet.catalog",
        "mcpfleet.stacks",
    ),
    "components/manifests": (*PULUMI, *ABOVE_THE_PROGRAM),
    "components": ABOVE_THE_PROGRAM,
    "mcpfleet/plan": ("mcpfleet.cli",),
    # Clients of a running fleet: they read the catalog and stacks, never the Pulumi program.
    "mcpfleet/verify": (*PULUMI, "components", *ABOVE_THE_PROGRAM, "mcpfleet.dev"),
    # Pins written into the catalog: registries and running servers (through verify's listing), never the
    # Pulumi program or the local fleet.
    "mcpfleet/pin": (*PULUMI, "components", *ABOVE_THE_PROGRAM, "mcpfleet.dev"),
    # The fleet on one machine: the gateway's configuration as rendered for every environment, and no
    # other part of the Pulumi program.
    "mcpfleet/dev": (
        *PULUMI,
        *(f"components.{module}" for module in PROGRAM_MODULES),
        *ABOVE_THE_PROGRAM,
        "mcpfleet.verify",
    ),
    # The router reads router.json and nothing of the catalog, the stacks or the Pulumi program.
    "mcpfleet/router": (
        *PULUMI,
        "components",
        *ABOVE_THE_PROGRAM,
        "mcpfleet.catalog",
        "mcpfleet.stacks",
        "mcpfleet.fleet",
        "mcpfleet.dev",
        "mcpfleet.verify",
    ),
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package: str) -> None:
    root = REPO / package
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    assert files
    for path in files:
        for name in imports_of(path):
            for forbidden in FORBIDDEN[package]:
                assert not (name == forbidden or name.startswith(forbidden + ".")), (
                    f"{path.relative_to(REPO)} imports {name}"
                )
