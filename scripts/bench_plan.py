"""Benchmark `mcpfleet plan` on fleets of 100 and 1,000 servers cloned from the sample catalog.

    python -m scripts.bench_plan [--env prod] [--sizes 100 1000]

Prints seconds, resources and resources/s per size, how time grows against the smallest size
(1.0x per 1.0x more servers is linear), and how much of its ConfigMap's 1 MiB the gateway's
configuration (haproxy.cfg and its map files) and the MCP router's (router.json) each take.
Includes loading and validating the catalog and writing build output, as `mcpfleet plan` does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from components.manifests.gateway import CONFIG_MAP_LIMIT_BYTES, CONFIG_MAP_NAME, config_map_size
from components.manifests.router import CONFIG_MAP_NAME as ROUTER_CONFIG_MAP_NAME
from mcpfleet.plan.engine import Registration
from mcpfleet.plan.run import plan

REPO = Path(__file__).resolve().parent.parent


def cloned_catalog(root: Path, size: int, env: str) -> Path:
    """size servers, round-robin clones of the sample entries, each enabled in env."""
    samples = [
        yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted((REPO / "catalog" / "servers").glob("*.yaml"))
    ]
    servers = root / "servers"
    servers.mkdir(parents=True)
    for index in range(size):
        entry: dict[str, Any] = dict(samples[index % len(samples)])
        entry.pop("$schema", None)
        entry["name"] = f"{entry['name'][:30]}-{index:04d}"
        # Each store key is one secret owned by one server: clones get their own.
        entry["secrets"] = [{**ref, "key": f"{ref['key']}-{index:04d}"} for ref in entry.get("secrets", [])]
        environments = dict(entry.get("environments") or {"local": {}, "dev": {}})
        environments.setdefault(env, {})
        entry["environments"] = environments
        (servers / f"{entry['name']}.yaml").write_text(
            yaml.safe_dump(entry, sort_keys=False), encoding="utf-8"
        )
    return root


def config_share(registrations: Sequence[Registration], name: str) -> str:
    """The size of ConfigMap name, and its share of the 1 MiB Kubernetes allows one."""
    [size] = [
        config_map_size(r.inputs["data"])
        for r in registrations
        if r.inputs.get("kind") == "ConfigMap" and r.inputs["metadata"]["name"] == name
    ]
    return f"{size / 1024:.0f} KiB ({size / CONFIG_MAP_LIMIT_BYTES:.0%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="prod", choices=["local", "dev", "staging", "prod"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()

    print(f"mcpfleet plan --env {args.env}, catalogs cloned from catalog/servers")
    print(
        f"{'servers':>8} {'seconds':>8} {'resources':>10} {'resources/s':>12} {'time vs first':>14}"
        f" {'gateway ConfigMap':>18} {'router ConfigMap':>18}"
    )
    first: tuple[int, float] | None = None
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            catalog = cloned_catalog(Path(scratch) / f"catalog-{size}", size, args.env)
            started = time.perf_counter()
            try:
                result = plan(args.env, catalog, REPO / "stacks", Path(scratch) / f"build-{size}")
            except ValueError as exc:
                # A fleet the program refuses (e.g. a gateway configuration over the ConfigMap limit) is
                # a finding to print, not a crash of the benchmark.
                print(f"{size:>8}  REFUSED after {time.perf_counter() - started:.1f} s: {exc}")
                continue
            seconds = time.perf_counter() - started
            resources = len(result.registrations)
            first = first or (size, seconds)
            growth = f"{seconds / first[1]:.1f}x / {size / first[0]:.0f}x"
            print(
                f"{size:>8} {seconds:>8.2f} {resources:>10} {resources / seconds:>12.0f} {growth:>14}"
                f" {config_share(result.registrations, CONFIG_MAP_NAME):>18}"
                f" {config_share(result.registrations, ROUTER_CONFIG_MAP_NAME):>18}"
            )


if __name__ == "__main__":
    main()
