"""What the router's listings cost at fleet size: memory of the cache and of the held connections, and the
time and CPU of a full listing round, with N servers of 16 tools each.

    python -m scripts.bench_listings [--servers 1000] [--processes 4] [--era modern|legacy] [--no-listen]

Real servers: `--processes` copies of tests/router/changing_server.py (16 tools: echo, grow, reword and 13
fillers, plus a resource, a template and a prompt), and N router.json entries spread over them, each one
a server to the router (its own listing, its own connection). Every tool is pinned, as in prod.

Printed, for this process (the router's side; the servers run in their own processes):
- the first round: `start()` to every server listed (connect, discover or initialize, every list);
- a full refresh round: `refresh()` of every server at once, on the held connections where the servers
  announce changes (`--no-listen`: none are held, each refresh connects afresh);
- memory: resident memory the listings added; then, traced (tracemalloc, a second run), everything the
  listings hold and the cache alone once every connection closed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mcp import Client

from mcpfleet.router.config import RouterConfig, parse_config
from mcpfleet.router.listings import Listings, tool_hash
from mcpfleet.router.local import free_port
from mcpfleet.router.observe import Metrics
from mcpfleet.router.upstreams import Endpoints

REPO = Path(__file__).resolve().parent.parent
FILLERS = 13  # with echo, grow and reword: 16 tools


@contextmanager
def servers(count: int, args: Sequence[str], log_dir: Path) -> Iterator[list[int]]:
    ports = [free_port() for _ in range(count)]
    processes = []
    try:
        for port in ports:
            command = [sys.executable, "-m", "tests.router.changing_server", "--port", str(port), *args]
            with (log_dir / f"server-{port}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        for port, process in zip(ports, processes, strict=True):
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"server on port {port} did not start; see {log_dir}") from None
                    time.sleep(0.05)
        yield ports
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=10)


async def pins_of(port: int, mode: str) -> dict[str, str]:
    async with Client(f"http://127.0.0.1:{port}/mcp", mode=mode, cache=None) as client:
        tools = (await client.list_tools()).tools
    return {t.name: tool_hash(t.name, t.description, t.input_schema) for t in tools}


def mib(size: float) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def rss() -> int:
    """This process's resident memory, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def rate(seconds: float, count: int) -> str:
    return f"{seconds:.2f} s ({seconds / count * 1000:.1f} ms a server)"


async def timed(config: RouterConfig, names: list[str]) -> None:
    """The first round and a full refresh round, untraced: the router's own CPU and wall time."""
    endpoints = {name: Endpoints(server.upstream) for name, server in config.servers.items()}
    before = rss()
    listings = Listings(config, endpoints, Metrics(), timeout=60.0)
    wall, cpu = time.perf_counter(), time.process_time()
    await listings.start()
    done = await listings.wait_listed(600)
    first_wall, first_cpu = time.perf_counter() - wall, time.process_time() - cpu
    count = len(names)
    listed = [listing for name in names if (listing := listings.get(name)) is not None]
    tools = sum(len(listing.tools) for listing in listed)
    print(f"servers {count}, listed {len(listed)}{'' if done else ' (the round did not end)'}, tools {tools}")
    print(f"first round: wall {first_wall:.2f} s, router CPU {rate(first_cpu, count)}")
    print(f"resident memory grown by the listings: {mib(rss() - before)}")
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(listings.refresh(name) for name in names))
    again_wall, again_cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"full refresh round: wall {again_wall:.2f} s, router CPU {rate(again_cpu, count)}")
    assert all(listings.verdict(name, "echo") == "pinned" for name in names if listings.get(name) is not None)
    await listings.stop()


async def traced(config: RouterConfig, names: list[str]) -> None:
    """Python memory (tracemalloc): everything the listings hold, then the cache alone."""
    endpoints = {name: Endpoints(server.upstream) for name, server in config.servers.items()}
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    listings = Listings(config, endpoints, Metrics(), timeout=60.0)
    await listings.start()
    await listings.wait_listed(600)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - baseline
    kept = [listing for name in names if (listing := listings.get(name)) is not None]
    tools = sum(len(listing.tools) for listing in kept)
    await listings.stop()
    del listings, endpoints
    await asyncio.sleep(0.5)  # the closed connections' last callbacks
    gc.collect()
    cache = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    count = len(names)
    print(f"traced memory, everything the listings hold: {mib(held)}")
    print(
        f"traced memory, the cache alone: {mib(cache)}"
        f" ({cache / max(tools, 1) / 1024:.2f} KiB a tool, all included)"
    )
    print(
        f"traced memory, connections and tasks: {mib(held - cache)}"
        f" ({(held - cache) / count / 1024:.0f} KiB a server)"
    )
    assert kept  # held until measured


async def measure(ports: list[int], count: int, era: str) -> None:
    pins = await pins_of(ports[0], "legacy" if era == "legacy" else "auto")
    names = [f"server-{i:04d}" for i in range(count)]
    auth = {
        "issuer": "https://id.bench",
        "algorithm": "ES256",
        "audiencePrefix": "https://mcp.bench/servers/",
    }
    document: dict[str, Any] = {
        "environment": "bench",
        "auth": auth,
        "maxBodyBytes": 1048576,
        "unpinnedTools": "withhold",
        "servers": {
            name: {
                "publicPath": f"/servers/{name}/mcp",
                "transport": "streamable-http",
                "upstream": {"addresses": [f"127.0.0.1:{ports[i % len(ports)]}"], "path": "/mcp"},
                "tools": sorted(pins),
                "toolPins": pins,
            }
            for i, name in enumerate(names)
        },
    }
    config = parse_config(document)
    await timed(config, names)
    await traced(config, names)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scripts.bench_listings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--era", choices=("modern", "legacy"), default="modern")
    parser.add_argument("--no-listen", action="store_true", help="Servers announce no changes: nothing held.")
    args = parser.parse_args(argv)
    server_args = ["--filler", str(FILLERS)]
    if args.era == "legacy":
        server_args.append("--legacy-only")
    if args.no_listen:
        server_args += ["--no-listen", "--quiet"]
    with (
        tempfile.TemporaryDirectory(prefix="bench-listings-") as logs,
        servers(args.processes, server_args, Path(logs)) as ports,
    ):
        asyncio.run(measure(ports, args.servers, args.era))


if __name__ == "__main__":
    main()
