"""A rule's cases through the real review(): resources become registrations, catalog entries a Fleet."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mcpfleet.fleet import Fleet
from mcpfleet.plan.run import load_inputs
from mcpfleet.stacks.loader import load_stack_config
from mcpfleet.stacks.models import CONFIG_KEY
from policies.review import Violation, review
from policies.rules._framework import Case, Rule

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CaseRegistration:
    urn: str
    type: str
    name: str
    parent: str | None
    inputs: Mapping[str, Any]
    dependencies: tuple[str, ...] = ()


def urn_for(environment: str, resource_type: str, name: str) -> str:
    return f"urn:pulumi:{environment}::mcpfleet::{resource_type}::{name}"


def registrations(case: Case) -> list[CaseRegistration]:
    """Case resources as the engine registers them; `parent` and `depends_on` name other case resources."""
    urns = {r.name: urn_for(case.environment, r.type, r.name) for r in case.resources}
    return [
        CaseRegistration(
            urn=urns[r.name],
            type=r.type,
            name=r.name,
            parent=urns[r.parent] if r.parent is not None else None,
            inputs=r.inputs,
            dependencies=tuple(sorted(urns[d] for d in r.depends_on)),
        )
        for r in case.resources
    ]


def fleet_for(case: Case, workdir: Path) -> Fleet | None:
    """The case's catalog entries resolved for its environment, through the real loaders.

    A case with stack settings but no entries gets a fleet of no servers: its environment's settings
    (strictness) without a catalog. A case with neither gets none, as the pack does when it cannot load
    the stack, and rules gated on strictness assume the strictest.
    """
    if not case.fleet and not case.stack:
        return None
    stacks = workdir / "stacks"
    shutil.copytree(REPO / "stacks", stacks)
    if case.stack:
        path = stacks / f"Pulumi.{case.environment}.yaml"
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        document["config"][CONFIG_KEY].update(case.stack)
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
    if not case.fleet:
        _, settings = load_stack_config(stacks, case.environment)
        return Fleet(case.environment, settings, ())
    servers = workdir / "catalog" / "servers"
    servers.mkdir(parents=True)
    for entry in case.fleet:
        (servers / f"{entry['name']}.yaml").write_text(yaml.safe_dump(dict(entry)), encoding="utf-8")
    _, fleet = load_inputs(case.environment, workdir / "catalog", stacks)
    return fleet


def run_case(rule: Rule, case: Case, workdir: Path) -> list[Violation]:
    return review(registrations(case), case.environment, fleet_for(case, workdir), rules=[rule])
