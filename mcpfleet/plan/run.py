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
from mcpfleet.plan.reports import render_junit, render_markdown, render_sarif
from mcpfleet.stacks.loader import (
    GATEWAY_JWT_KEY,
    GRAFANA_PASSWORD_KEY,
    SECRETS_KEY,
    load_stack_config,
    stack_file,
)
from policies.review import Violation, review
from policies.rules import all_rules

# The Pulumi SDK spends ~4 ms of pure Python per resource; large fleets split their per-server
# components across processes (one per core). Helpers are spawned, never forked: a fork copies the
# SDK's thread-pool locks mid-use and can hang. Below this size a helper costs more than it saves.
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
    violations: list[Violation] = field(default_factory=list)

    @property
    def blocking(self) -> list[Violation]:
        """Mandatory violations: the plan fails, as `pulumi preview --policy-pack` would."""
        return [v for v in self.violations if v.mandatory]


def load_inputs(env: EnvName, catalog_dir: Path, stacks_dir: Path) -> tuple[dict[str, object], Fleet]:
    """Validate everything a plan reads; raises InvalidInput naming each bad file and field."""
    config, settings = load_stack_config(stacks_dir, env)
    catalog = load_catalog(catalog_dir)
    fleet = resolve_fleet(catalog, env, settings, display_path(stack_file(stacks_dir, env)))
    return _offline_secrets(config, fleet), fleet


def plan(
    env: EnvName, catalog_dir: Path, stacks_dir: Path, out_dir: Path | None, processes: int | None = None
) -> PlanResult:
    """Plan env; processes=None picks one per core for large catalogs and one for small ones."""
    started = time.perf_counter()
    shards = processes or _process_count(catalog_dir)
    # Helper processes start first, so their interpreter start-up overlaps our own validation.
    pool = (
        ProcessPoolExecutor(shards - 1, mp_context=multiprocessing.get_context("spawn"))
        if shards > 1
        else None
    )
    try:
        helpers = (
            []
            if pool is None
            else [
                pool.submit(_plan_shard, env, catalog_dir, stacks_dir, index, shards)
                for index in range(1, shards)
            ]
        )
        config, fleet = load_inputs(env, catalog_dir, stacks_dir)
        results = [_run_shard(env, config, catalog_dir, 0, shards)]
        results.extend(helper.result() for helper in helpers)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    registrations = results[0] if shards == 1 else _merge(results)

    files = {
        f"manifests/{path}": render_manifests(documents)
        for path, documents in manifest_files(registrations).items()
    }
    files["resources.json"] = render_resources(registrations)
    violations = review(registrations, env, fleet)
    files.update(_reports(env, violations, len(registrations), catalog_dir, stacks_dir))
    if out_dir is not None:
        replace_directory(out_dir, files)
    counts = Counter(r.inputs.get("kind", r.type) if is_manifest(r) else r.type for r in registrations)
    return PlanResult(fleet, registrations, files, time.perf_counter() - started, out_dir, counts, violations)


def _reports(
    env: str, violations: list[Violation], resources: int, catalog_dir: Path, stacks_dir: Path
) -> dict[str, str]:
    """The policy review beside the manifests, ready for a PR comment, code scanning and CI."""
    rules = all_rules()

    def location_of(violation: Violation) -> str:
        # Point at what a reviewer edits: the server's catalog entry, else the environment's stack file.
        if violation.server:
            return display_path(catalog_dir / "servers" / f"{violation.server}.yaml")
        return display_path(stack_file(stacks_dir, env))

    return {
        "policy-report.md": render_markdown(env, violations, rules, resources),
        "policy-report.sarif": render_sarif(env, violations, rules, location_of),
        "policy-report.junit.xml": render_junit(env, violations, rules),
    }


def _process_count(catalog_dir: Path) -> int:
    servers = sum(1 for _ in (catalog_dir / "servers").glob("*.yaml"))
    return min(os.cpu_count() or 1, MAX_PROCESSES) if servers >= PARALLEL_FROM else 1


def _offline_secrets(config: dict[str, Any], fleet: Fleet) -> dict[str, Any]:
    """Secret values never reach the offline plan: stand in one per reference, masked like any secret.

    The stack file holds them encrypted (`secure:`), which only the Pulumi CLI can open; the plan shows
    where each goes and that it stays a secret (every output prints it as "[secret]").
    """
    config = {
        **config,
        GRAFANA_PASSWORD_KEY: "offline plan: value not read",
        # Not a secret, but set per stack outside the repository like one.
        GATEWAY_JWT_KEY: "offline plan: the issuer public key from `pulumi config set gatewayJwtPublicKey`",
    }
    if fleet.settings.cluster.provider != "existing":
        return config
    keys = sorted({ref.key for server in fleet.servers for ref in server.spec.secrets})
    stand_ins = {key: f"offline plan: value of {key} not read" for key in keys}
    return {**config, SECRETS_KEY: stand_ins}


def _run_shard(
    env: str, config: dict[str, Any], catalog_dir: Path, index: int, shards: int
) -> list[Registration]:
    config = {**config, f"{PROJECT}:catalogDir": str(catalog_dir)}
    if shards > 1:
        config[f"{PROJECT}:{PLAN_SHARD_KEY}"] = f"{index}/{shards}"
    return run_program(fleet_program, project=PROJECT, stack=env, config=config)


def _plan_shard(
    env: EnvName, catalog_dir: Path, stacks_dir: Path, index: int, shards: int
) -> list[Registration]:
    """In a helper process: validate on our own (the inputs are the same files), run one shard."""
    config, _ = load_inputs(env, catalog_dir, stacks_dir)
    return _run_shard(env, config, catalog_dir, index, shards)


def _merge(results: list[list[Registration]]) -> list[Registration]:
    """Shared resources are registered by every shard and must agree; a server's, by exactly one."""
    seen: dict[str, tuple[Registration, int]] = {}
    for registrations in results:
        for registration in registrations:
            first, count = seen.get(registration.urn, (registration, 0))
            if first != registration:
                raise DuplicateResource(f"two resources share the URN {registration.urn}")
            seen[registration.urn] = (first, count + 1)
    for urn, (_, count) in seen.items():
        if count not in (1, len(results)):
            raise DuplicateResource(f"{urn} registered {count} times across {len(results)} shards")
    return sorted((registration for registration, _ in seen.values()), key=lambda r: r.urn)
