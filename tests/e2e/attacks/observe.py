"""What the gateway holds, read from outside: the routers' memory and metric series, the gateways' stick
tables. A flood of made-up session ids must leave all of it as it was."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.attacks.stack import Stack, fetch

# A router serving 300 refusals allocates a little (buffers, the allocator's arenas: about 0.2 MiB measured
# here). A coarse bound: the decisive checks are that no series and no server learn of any id.
RSS_GROWTH_LIMIT_KIB = 1024
# Series a refusal may add once (its reason, outcome and code), whatever the number of ids.
NEW_SERIES_LIMIT = 12
_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?) ", re.M)
_TABLE = re.compile(r'^haproxy_sticktable_used\{name="([^"]+)"[^}]*\} ([0-9.e+]+)$', re.M)


@dataclass(frozen=True)
class State:
    rss_kib: dict[int, int]
    series: dict[str, frozenset[str]]
    tables: dict[str, dict[str, int]]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for {pid}")


def state(stack: Stack) -> State:
    return State(
        rss_kib={pid: rss_kib(pid) for pid in stack.router_pids()},
        series={
            router.address: frozenset(m.group(1) for m in _SERIES.finditer(fetch(router.metrics_url)))
            for router in stack.routers
        },
        tables={
            gateway.address: {
                m.group(1): int(float(m.group(2))) for m in _TABLE.finditer(fetch(gateway.metrics_url))
            }
            for gateway in stack.gateways
        },
    )


def growth(before: State, after: State) -> dict[str, Any]:
    """What grew, for the run's figures: KiB of memory per router process, series per router, entries per
    gateway stick table."""
    return {
        "router_rss_kib": {
            str(pid): after.rss_kib.get(pid, kib) - kib for pid, kib in before.rss_kib.items()
        },
        "router_new_series": {a: len(after.series[a] - s) for a, s in before.series.items()},
        "gateway_table_entries": {
            a: {t: after.tables[a].get(t, n) - n for t, n in tables.items()}
            for a, tables in before.tables.items()
        },
    }


def unchanged(before: State, after: State) -> str | None:
    """None when the flood left no trace beyond a bounded one; else what grew."""
    problems = []
    for pid, kib in before.rss_kib.items():
        grown = after.rss_kib.get(pid, kib) - kib
        if grown > RSS_GROWTH_LIMIT_KIB:
            problems.append(f"router pid {pid} grew by {grown} KiB")
    for address, series in before.series.items():
        added = after.series[address] - series
        if len(added) > NEW_SERIES_LIMIT:
            problems.append(f"router {address} has {len(added)} new series: {sorted(added)[:20]}")
        leaked = [s for s in added if "mf1." in s or re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", s)]
        if leaked:
            problems.append(f"router {address} labels series with session ids: {leaked[:5]}")
    for address, tables in before.tables.items():
        for table, used in tables.items():
            grown = after.tables[address].get(table, used) - used
            # This caller's own rate key is the one entry the flood may add.
            if grown > 1:
                problems.append(f"gateway {address} stick table {table} grew by {grown} entries")
    return "; ".join(problems) or None
