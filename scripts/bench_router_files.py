"""Measure the router's configuration files at fleet scale: how many ConfigMaps, how full, and what one server
more or less changes.

    python -m scripts.bench_router_files [--sizes 1000] [--tools sample 16]

Fleets are clones of the sample catalog's entries (catalog/servers), all enabled in prod, every tool pinned
(prod withholds unpinned tools); `--tools sample` keeps each entry's own tools (12.7 a server on the
shipped catalog), a number gives every server that many (the entry's tools, cycled and renamed). The pins
are the sha256 of the clone and tool names: stand-ins of the real size, not hashes of real tools.

Prints, per fleet: router.json as one file, the ConfigMaps `render_router_files` gives (bytes of data and
servers each), the time to render them and for the router to load the directory, and how many files change
when one server is added at the front of the name order or removed; beside the last, what packing the
same servers greedily in name order (each file filled to the budget) would change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from components.gateway.router_config import (
    CONFIG_MAP_BUDGET_BYTES,
    _document,
    _entries,
    render_router_config,
    render_router_files,
)
from components.manifests.gateway import CONFIG_MAP_LIMIT_BYTES, config_map_size
from components.manifests.router import CONFIG_KEY, config_map_name
from mcpfleet.catalog.loader import Catalog, CatalogEntry
from mcpfleet.catalog.models import Server
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.model import EnvName
from mcpfleet.router.config import load_config
from mcpfleet.stacks.loader import load_stack_config

REPO = Path(__file__).resolve().parent.parent
ENV: EnvName = "prod"


def clone(sample: dict[str, Any], name: str, tools: int | None) -> dict[str, Any]:
    entry = {key: value for key, value in sample.items() if key not in ("$schema", "decommissioned")}
    entry["name"] = name
    entry["secrets"] = [{**ref, "key": f"{ref['key']}-{name}"} for ref in entry.get("secrets", [])]
    entry["environments"] = {ENV: {}}
    own = list(entry.get("tools", []))
    if tools is not None and own:
        own = [
            own[k] if k < len(own) else {**own[k % len(own)], "name": f"{own[k % len(own)]['name']}-{k}"}
            for k in range(tools)
        ]
    entry["tools"] = [
        {**tool, "sha256": hashlib.sha256(f"{name}/{tool['name']}".encode()).hexdigest()} for tool in own
    ]
    return entry


def cloned_fleet(size: int, tools: int | None, extra: str | None = None) -> Fleet:
    samples = [
        yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted((REPO / "catalog" / "servers").glob("*.yaml"))
    ]
    entries = [
        clone(samples[i % len(samples)], f"{samples[i % len(samples)]['name'][:30]}-{i:04d}", tools)
        for i in range(size)
    ]
    if extra is not None:
        entries.append(clone(samples[0], extra, tools))
    catalog = Catalog(
        Path("catalog"), tuple(CatalogEntry(Server.model_validate(e), f"{e['name']}.yaml") for e in entries)
    )
    _, settings = load_stack_config(REPO / "stacks", ENV)
    return resolve_fleet(catalog, ENV, settings, f"stacks/Pulumi.{ENV}.yaml")


def greedy(fleet: Fleet) -> list[str]:
    """The servers packed in name order, each file filled up to the budget: the simple alternative."""
    files: list[list[tuple[str, str]]] = [[]]
    for name, line in _entries(fleet, None):
        if (
            files[-1]
            and config_map_size({"router-servers-00.json": _document({}, [*files[-1], (name, line)])})
            > CONFIG_MAP_BUDGET_BYTES
        ):
            files.append([])
        files[-1].append((name, line))
    return [_document({}, group) for group in files]


def changed(before: dict[str, str], after: dict[str, str]) -> int:
    """Server files added, removed or different (router.json, which names them all, left out)."""
    names = (set(before) | set(after)) - {CONFIG_KEY}
    return sum(1 for name in names if before.get(name) != after.get(name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--tools", nargs="+", default=["sample", "16"])
    args = parser.parse_args()
    print(f"router configuration files, {ENV}, clones of catalog/servers, every tool pinned")
    print(f"ConfigMap budget {CONFIG_MAP_BUDGET_BYTES} bytes of data (limit {CONFIG_MAP_LIMIT_BYTES})")
    for size in args.sizes:
        for tools_arg in args.tools:
            tools = None if tools_arg == "sample" else int(tools_arg)
            fleet = cloned_fleet(size, tools)
            declared = sum(len(s.spec.tools) for s in fleet.servers)
            whole = render_router_config(fleet)
            started = time.perf_counter()
            files = render_router_files(fleet)
            render_ms = (time.perf_counter() - started) * 1000
            with tempfile.TemporaryDirectory() as scratch:
                for name, text in files.items():
                    (Path(scratch) / name).write_bytes(text.encode())
                load_config(Path(scratch))  # once first: the models' validators are built on first use
                started = time.perf_counter()
                loaded = load_config(Path(scratch))
                load_ms = (time.perf_counter() - started) * 1000
            assert len(loaded.servers) == len(fleet.servers)
            print(
                f"\n{len(fleet.servers)} servers x {declared / len(fleet.servers):.1f} tools"
                f" ({declared} pinned): one router.json would be {len(whole.encode())} bytes"
                f" ({config_map_size({CONFIG_KEY: whole}) / CONFIG_MAP_LIMIT_BYTES:.0%} of a ConfigMap)"
            )
            print(
                f"  {len(files)} ConfigMaps, rendered in {render_ms:.0f} ms,"
                f" loaded by the router in {load_ms:.0f} ms"
            )
            for name, text in files.items():
                servers = len(json.loads(text)["servers"])
                size_bytes = config_map_size({name: text})
                print(
                    f"  {config_map_name(name):<32} {size_bytes:>8} bytes ({size_bytes / 1024:6.1f} KiB,"
                    f" {size_bytes / CONFIG_MAP_LIMIT_BYTES:4.0%} of the limit) {servers:>5} servers"
                )
            if len(files) == 1:
                continue
            added = render_router_files(cloned_fleet(size, tools, extra="aaa-new-server"))
            removed = render_router_files(cloned_fleet(size - 1, tools))
            packed = greedy(fleet)
            packed_added = greedy(cloned_fleet(size, tools, extra="aaa-new-server"))
            packed_changed = sum(
                1
                for i in range(max(len(packed), len(packed_added)))
                if packed[i : i + 1] != packed_added[i : i + 1]
            )
            print(
                f"  one server added first in name order: {changed(files, added)} of {len(files) - 1} server"
                f" files change (greedy packing in name order: {packed_changed} of {len(packed)});"
                f" the last one removed: {changed(files, removed)}"
            )


if __name__ == "__main__":
    main()
