"""The layering stays one-way: models know nothing of Pulumi, components nothing of the CLI or the plan."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# package (folder) -> import prefixes it must never use
FORBIDDEN = {
    "mcpfleet/catalog": (
        "pulumi",
        "pulumi_kubernetes",
        "pulumi_aws",
        "components",
        "mcpfleet.plan",
        "mcpfleet.cli",
    ),
    "mcpfleet/stacks": (
        "pulumi",
        "pulumi_kubernetes",
        "pulumi_aws",
        "components",
        "mcpfleet.plan",
        "mcpfleet.cli",
    ),
    "mcpfleet/fleet.py": ("pulumi", "components", "mcpfleet.plan", "mcpfleet.cli"),
    "components/manifests": ("pulumi", "pulumi_kubernetes", "pulumi_aws", "mcpfleet.plan", "mcpfleet.cli"),
    "components": ("mcpfleet.plan", "mcpfleet.cli"),
    "mcpfleet/plan": ("mcpfleet.cli",),
    # Clients of a running fleet: they read the catalog and stacks, never the Pulumi program.
    "mcpfleet/verify": (
        "pulumi",
        "pulumi_kubernetes",
        "pulumi_aws",
        "components",
        "mcpfleet.plan",
        "mcpfleet.cli",
        "mcpfleet.dev",
    ),
    # The fleet on one machine: the gateway's configuration as rendered for every environment, and no
    # other part of the Pulumi program.
    "mcpfleet/dev": (
        "pulumi",
        "pulumi_kubernetes",
        "pulumi_aws",
        *(
            f"components.{module}"
            for module in ("program", "fleet", "server", "cluster", "mesh", "monitoring")
        ),
        *(f"components.{module}" for module in ("addons", "secrets", "namespaces", "kube")),
        "mcpfleet.plan",
        "mcpfleet.cli",
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
