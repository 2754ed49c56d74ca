"""Plan one environment: validate the inputs, run the program offline, write build/<env>/."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.program import PLAN_SHARD_KEY, PROJECT, fleet_program
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.errors import display_path
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.model import EnvName
from mcpfleet.outputs import replace_directory
from mcpfleet.plan.engine import DuplicateResource, Registration, run_program
from mcpfleet.plan.render import is_manifest, manifest_files, render_manifests, render_resources
from mcpfleet.stacks.loader import load_stack_config, stack_file

# The Pulumi SDK spends ~4 ms of pure Python per resource; large fleets split their per-server
# components across processes (one per core). Below this size a second process costs more than it saves.
PARALLEL_FROM = 200
MAX_PROCESSES = 4


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
    shards = min(os.cpu_count() or 1, MAX_PROCESSES) if len(fleet.servers) >= PARALLEL_FROM else 1
    if shards == 1:
        registrations = run_program(fleet_program, project=PROJECT, stack=env, config=config)
    else:
        registrations = _run_in_parallel(env, config, shards)

    files = {
        f"manifests/{path}": render_manifests(documents)
        for path, documents in manifest_files(registrations).items()
    }
    files["resources.json"] = render_resources(registrations)
    if out_dir is not None:
        replace_directory(out_dir, files)
    counts = Counter(r.inputs.get("kind", r.type) if is_manifest(r) else r.type for r in registrations)
    return PlanResult(fleet, registrations, files, time.perf_counter() - started, out_dir, counts)


def _run_shard(env: str, config: dict[str, Any], shard: str) -> list[Registration]:
    shard_config = {**config, f"{PROJECT}:{PLAN_SHARD_KEY}": shard}
    return run_program(fleet_program, project=PROJECT, stack=env, config=shard_config)


def _run_in_parallel(env: str, config: dict[str, Any], shards: int) -> list[Registration]:
    """Run the program once per shard and merge: shared resources once, each server's exactly once."""
    # fork: the children inherit the loaded SDK and our modules instead of importing them again.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=shards, mp_context=context) as pool:
        futures = [pool.submit(_run_shard, env, config, f"{index}/{shards}") for index in range(shards)]
        results = [future.result() for future in futures]
    seen: dict[str, tuple[Registration, int]] = {}
    for registrations in results:
        for registration in registrations:
            first, count = seen.get(registration.urn, (registration, 0))
            if first != registration:
                raise DuplicateResource(f"two resources share the URN {registration.urn}")
            seen[registration.urn] = (first, count + 1)
    # A resource outside the per-server components is registered by every shard, one inside by one.
    for urn, (_, count) in seen.items():
        if count not in (1, shards):
            raise DuplicateResource(f"{urn} registered {count} times across {shards} shards")
    return sorted((registration for registration, _ in seen.values()), key=lambda r: r.urn)
