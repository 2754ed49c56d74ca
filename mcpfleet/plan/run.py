"""Plan one environment: validate the inputs, run the program offline, write build/<env>/."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from components.program import PROJECT, fleet_program
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.errors import display_path
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.model import EnvName
from mcpfleet.outputs import replace_directory
from mcpfleet.plan.engine import Registration, run_program
from mcpfleet.plan.render import is_manifest, manifest_files, render_manifests, render_resources
from mcpfleet.stacks.loader import load_stack_config, stack_file


@dataclass
class PlanResult:
    """What a plan produced, for the summary and for tests."""

    fleet: Fleet
    registrations: list[Registration]
    files: dict[str, str]
    seconds: float
    out_dir: Path | None = None
    counts: Counter[str] = field(default_factory=Counter)


def load_inputs(env: EnvName, catalog_dir: Path, stacks_dir: Path) -> tuple[dict[str, object], Fleet]:
    """Validate everything a plan reads; raises InvalidInput naming each bad file and field."""
    config, settings = load_stack_config(stacks_dir, env)
    catalog = load_catalog(catalog_dir)
    return config, resolve_fleet(catalog, env, settings, display_path(stack_file(stacks_dir, env)))


def plan(env: EnvName, catalog_dir: Path, stacks_dir: Path, out_dir: Path | None) -> PlanResult:
    started = time.perf_counter()
    config, fleet = load_inputs(env, catalog_dir, stacks_dir)
    config = {**config, f"{PROJECT}:catalogDir": str(catalog_dir)}
    registrations = run_program(fleet_program, project=PROJECT, stack=env, config=config)

    files = {
        f"manifests/{path}": render_manifests(documents)
        for path, documents in manifest_files(registrations).items()
    }
    files["resources.json"] = render_resources(registrations)
    if out_dir is not None:
        replace_directory(out_dir, files)
    counts = Counter(r.inputs.get("kind", r.type) if is_manifest(r) else r.type for r in registrations)
    return PlanResult(fleet, registrations, files, time.perf_counter() - started, out_dir, counts)
