"""Plan one environment: validate the inputs, run the program offline, write build/<env>/."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, MutableSequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.program import PLAN_SHARD_KEY, PROJECT, fleet_program
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.errors import display_path
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.model import EnvName
from mcpfleet.outputs import replace_directory
from mcpfleet.plan.endpoints import ENDPOINTS_FILE, render_endpoints
from mcpfleet.plan.engine import DuplicateResource, Registration, paused_gc, run_program
from mcpfleet.plan.render import (
    is_manifest,
    join_resource_entries,
    render_manifest_files,
    resource_entry,
)
from mcpfleet.plan.reports import render_junit, render_markdown, render_sarif
from mcpfleet.stacks.loader import (
    GATEWAY_JWT_KEY,
    GRAFANA_PASSWORD_KEY,
    ROUTER_SESSION_KEYS_KEY,
    SECRETS_KEY,
    load_stack_config,
    stack_file,
)
from policies.review import _LEVEL_ORDER, _SEVERITY_ORDER, Violation, review  # _review() sorts as it does
from policies.rules import all_rules
from policies.rules._framework import Rule

# The Pulumi SDK spends ~1 ms of pure Python per resource: fleets split their per-server components
# across processes (one per core), from the size where that saves time. A forked helper starts at once
# (sharding 16 servers in two saves a fifth); a spawned one imports everything first (~1.5 s).
PARALLEL_FROM = 200
FORKED_PARALLEL_FROM = 16
MAX_PROCESSES = 4

PlanProgress = Callable[[str, int], None]
"""Told where a plan is, for a progress display: ("loading", 0), then ("program", resources registered
so far, across the shard processes: the platform's once per shard), ("review", resources) and
("writing", files)."""
# How often a progress display is told the count while the program runs.
PROGRESS_EVERY = 0.1


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
    env: EnvName,
    catalog_dir: Path,
    stacks_dir: Path,
    out_dir: Path | None,
    processes: int | None = None,
    progress: PlanProgress | None = None,
) -> PlanResult:
    """Plan env; processes=None picks one per core for large catalogs and one for small ones."""
    started = time.perf_counter()
    shards = processes or _process_count(catalog_dir)
    tell = progress or _untold
    with paused_gc():
        tell("loading", 0)
        fleet, parts = _plan_shards(env, catalog_dir, stacks_dir, shards, progress)
        registrations, manifests, entries, resource_violations = _merge(parts)
        tell("review", len(registrations))
        files = {f"manifests/{path}": text for path, text in sorted(manifests.items())}
        files["resources.json"] = join_resource_entries(entries)
        files[ENDPOINTS_FILE] = render_endpoints(fleet)
        violations = _review(registrations, env, fleet, resource_violations)
        files.update(_reports(env, violations, len(registrations), fleet, catalog_dir, stacks_dir))
        if out_dir is not None:
            tell("writing", len(files))
            replace_directory(out_dir, files)
        counts = Counter(r.inputs.get("kind", r.type) if is_manifest(r) else r.type for r in registrations)
    return PlanResult(fleet, registrations, files, time.perf_counter() - started, out_dir, counts, violations)


@dataclass
class _Shard:
    """What one process planned: its registrations, what it rendered of them and what it reviewed."""

    registrations: list[Registration]
    # resources.json entries, one per registration, in the same order.
    entries: list[str]
    # Manifest files by path: the shard's servers' (and the platform's, for shard 0).
    manifests: dict[str, str]
    # Violations of the resource rules (each checks one resource alone) by its registrations.
    violations: list[Violation]


def _untold(phase: str, count: int) -> None:
    return None


def _plan_shards(
    env: EnvName, catalog_dir: Path, stacks_dir: Path, shards: int, progress: PlanProgress | None = None
) -> tuple[Fleet, list[_Shard]]:
    """Validate the inputs, then plan every shard in a helper process forked from this one.

    Forked helpers start in milliseconds (this process has imported the SDK and the providers already)
    and validate nothing again: they inherit the inputs. This process runs no shard itself, even when
    there is one: a program run leaves objects in reference cycles behind by the million (the SDK's
    outputs, futures and resources; see paused_gc), which would cost this process a collection once
    the plan ends (0.6 s for 100 servers, 1.5 s for 300), and a helper exits without collecting them.
    It only merges, reviews and writes; while helpers run, it waits.

    A fork is only safe from a process with no other thread (a thread's locks would be copied mid-use
    and could hang the child). The plan leaves none (see run_program), but a caller may have: then a
    single shard runs in this process, and several in spawned helpers, which import everything and
    validate again on their own while this process validates.

    With progress, the count of registered resources is told while the program runs: forked helpers
    count into shared memory, one slot each, which this process reads as it waits (spawned helpers are
    not counted: they only run off Linux or under a caller with threads).
    """
    tell = progress or _untold
    if not _can_fork():
        if shards == 1:
            config, fleet = load_inputs(env, catalog_dir, stacks_dir)
            tell("program", 0)
            counter = _InProcessCount(tell) if progress is not None else None
            return fleet, [_plan_shard(env, config, fleet, catalog_dir, 0, 1, counter)]
        with ProcessPoolExecutor(shards, mp_context=multiprocessing.get_context("spawn")) as pool:
            helpers = [
                pool.submit(_load_and_plan_shard, env, catalog_dir, stacks_dir, index, shards)
                for index in range(shards)
            ]
            _, fleet = load_inputs(env, catalog_dir, stacks_dir)
            tell("program", 0)
            return fleet, [helper.result() for helper in helpers]
    config, fleet = load_inputs(env, catalog_dir, stacks_dir)
    tell("program", 0)
    fork = multiprocessing.get_context("fork")
    counts = fork.Array("q", shards, lock=False) if progress is not None else None
    # A fork pool starts every helper at the first submit, before it starts a thread of its own; the
    # inputs reach them as initargs, which a fork hands over as they are (a task's are pickled).
    with ProcessPoolExecutor(
        shards, mp_context=fork, initializer=_receive_inputs, initargs=(config, fleet, counts)
    ) as pool:
        helpers = [
            pool.submit(_plan_forked_shard, env, catalog_dir, index, shards) for index in range(shards)
        ]
        if counts is not None:
            _wait_telling(helpers, counts, tell)
        return fleet, [helper.result() for helper in helpers]


def _wait_telling(helpers: list[Future[_Shard]], counts: MutableSequence[int], tell: PlanProgress) -> None:
    """Wait for the helpers, telling the resources they have registered so far."""
    pending = set(helpers)
    while pending:
        done, pending = wait(pending, timeout=PROGRESS_EVERY, return_when=FIRST_EXCEPTION)
        if any(future.exception() is not None for future in done):
            return
        tell("program", sum(counts))


class _InProcessCount:
    """Counts registrations in this process, telling the count every PROGRESS_EVERY seconds."""

    def __init__(self, tell: PlanProgress) -> None:
        self.count = 0
        self._tell = tell
        self._told = time.monotonic()

    def __call__(self) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._told >= PROGRESS_EVERY:
            self._told = now
            self._tell("program", self.count)


# In a forked helper process: the validated inputs of the plan it helps with, and the shared counts.
_received_inputs: tuple[dict[str, Any], Fleet] | None = None
_received_counts: MutableSequence[int] | None = None


def _receive_inputs(config: dict[str, Any], fleet: Fleet, counts: MutableSequence[int] | None) -> None:
    global _received_inputs, _received_counts
    _received_inputs = (config, fleet)
    _received_counts = counts


def _plan_forked_shard(env: EnvName, catalog_dir: Path, index: int, shards: int) -> _Shard:
    assert _received_inputs is not None, "a forked helper receives the inputs before any shard"
    config, fleet = _received_inputs
    counts = _received_counts
    registered = None
    if counts is not None:

        def registered() -> None:
            counts[index] += 1

    return _plan_shard(env, config, fleet, catalog_dir, index, shards, registered)


def _can_fork() -> bool:
    """Whether shard helpers can be forked: on Linux (elsewhere Python spawns by default, as macOS'
    system libraries are not fork-safe), from a process with no other thread."""
    return sys.platform == "linux" and threading.active_count() == 1


def _reports(
    env: str, violations: list[Violation], resources: int, fleet: Fleet, catalog_dir: Path, stacks_dir: Path
) -> dict[str, str]:
    """The policy review beside the manifests, ready for a PR comment, code scanning and CI."""
    rules = all_rules()

    def catalog_entry(server: str) -> str:
        return display_path(catalog_dir / "servers" / f"{server}.yaml")

    def location_of(violation: Violation) -> str:
        # Point at what a reviewer edits: the server's catalog entry, else the environment's stack file.
        if violation.server:
            return catalog_entry(violation.server)
        return display_path(stack_file(stacks_dir, env))

    markdown = render_markdown(
        env,
        violations,
        rules,
        resources,
        servers=[server.name for server in fleet.servers],
        catalog_entry=catalog_entry,
        stack_file=display_path(stack_file(stacks_dir, env)),
    )
    return {
        "policy-report.md": markdown,
        "policy-report.sarif": render_sarif(env, violations, rules, location_of),
        "policy-report.junit.xml": render_junit(env, violations, rules),
    }


def _process_count(catalog_dir: Path) -> int:
    servers = sum(1 for _ in (catalog_dir / "servers").glob("*.yaml"))
    parallel_from = FORKED_PARALLEL_FROM if _can_fork() else PARALLEL_FROM
    return min(os.cpu_count() or 1, MAX_PROCESSES) if servers >= parallel_from else 1


def _offline_secrets(config: dict[str, Any], fleet: Fleet) -> dict[str, Any]:
    """Secret values never reach the offline plan: stand in one per reference, masked like any secret.

    The stack file holds them encrypted (`secure:`), which only the Pulumi CLI can open; the plan shows
    where each goes and that it stays a secret (every output prints it as "[secret]").
    """
    config = {
        **config,
        GRAFANA_PASSWORD_KEY: "offline plan: value not read",
        ROUTER_SESSION_KEYS_KEY: "offline plan: value not read",
        # Not a secret, but set per stack outside the repository like one.
        GATEWAY_JWT_KEY: "offline plan: the issuer public key from `pulumi config set gatewayJwtPublicKey`",
    }
    if fleet.settings.cluster.provider != "existing":
        return config
    keys = sorted({ref.key for server in fleet.servers for ref in server.spec.secrets})
    stand_ins = {key: f"offline plan: value of {key} not read" for key in keys}
    return {**config, SECRETS_KEY: stand_ins}


def _plan_shard(
    env: EnvName,
    config: dict[str, Any],
    fleet: Fleet,
    catalog_dir: Path,
    index: int,
    shards: int,
    registered: Callable[[], None] | None = None,
) -> _Shard:
    """Run one shard of the program, render what it owns and run the resource rules on it.

    Whichever process runs the shard does it, so rendering and most of the review are spread over
    the processes too. Every shard registers the platform; shard 0 renders its files, the others
    their servers' files only (each server is in exactly one shard).
    """
    with paused_gc():
        config = {**config, f"{PROJECT}:catalogDir": str(catalog_dir)}
        if shards > 1:
            config[f"{PROJECT}:{PLAN_SHARD_KEY}"] = f"{index}/{shards}"
        registrations = run_program(
            fleet_program, project=PROJECT, stack=env, config=config, registered=registered
        )
        return _Shard(
            registrations,
            [resource_entry(r) for r in registrations],
            render_manifest_files(registrations, platform=index == 0),
            review(registrations, env, fleet, rules=_rules("resource")),
        )


def _load_and_plan_shard(
    env: EnvName, catalog_dir: Path, stacks_dir: Path, index: int, shards: int
) -> _Shard:
    """In a spawned helper process: validate on our own (the inputs are the same files), plan one shard."""
    with paused_gc():
        config, fleet = load_inputs(env, catalog_dir, stacks_dir)
        return _plan_shard(env, config, fleet, catalog_dir, index, shards)


def _rules(kind: str) -> list[Rule]:
    return [rule for rule in all_rules() if rule.kind == kind]


def _review(
    registrations: list[Registration], env: EnvName, fleet: Fleet, resource_violations: list[Violation]
) -> list[Violation]:
    """What review(registrations, env, fleet) returns, given what the shards found by resource rules.

    A resource rule sees one resource at a time, so running it shard by shard finds the same
    violations; the stack rules need every resource and run here. Sorted as review() sorts: it is a
    stable sort, and violations that tie (one rule, one resource) come from one shard in its order.
    """
    stack_violations = review(registrations, env, fleet, rules=_rules("stack"))
    return sorted(
        [*resource_violations, *stack_violations],
        key=lambda v: (_LEVEL_ORDER[v.enforcement], _SEVERITY_ORDER[v.severity], v.rule_id, v.urn or ""),
    )


def _merge(parts: list[_Shard]) -> tuple[list[Registration], dict[str, str], list[str], list[Violation]]:
    """Shared resources are registered by every shard and must agree; a server's, by exactly one.

    Returns the registrations in URN order with their resources.json entries, the manifest files and
    the resource rules' violations (a shared resource's once, as shard 0 found them).
    """
    seen: dict[str, tuple[Registration, int, str]] = {}
    manifests: dict[str, str] = {}
    for part in parts:
        for registration, entry in zip(part.registrations, part.entries, strict=True):
            first, count, first_entry = seen.get(registration.urn, (registration, 0, entry))
            if first != registration:
                raise DuplicateResource(f"two resources share the URN {registration.urn}")
            seen[registration.urn] = (first, count + 1, first_entry)
        for path, text in part.manifests.items():
            if path in manifests:
                raise DuplicateResource(f"two shards rendered manifests/{path}")
            manifests[path] = text
    for urn, (_, count, _) in seen.items():
        if count not in (1, len(parts)):
            raise DuplicateResource(f"{urn} registered {count} times across {len(parts)} shards")
    shared = {urn for urn, (_, count, _) in seen.items() if count > 1}
    violations = [
        violation
        for index, part in enumerate(parts)
        for violation in part.violations
        if index == 0 or violation.urn not in shared
    ]
    merged = sorted(seen.values(), key=lambda item: item[0].urn)
    return (
        [registration for registration, _, _ in merged],
        manifests,
        [entry for _, _, entry in merged],
        violations,
    )
