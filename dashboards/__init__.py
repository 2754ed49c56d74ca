"""Grafana dashboards as code (grafanalib). `python -m dashboards` writes them to dashboards/generated/,
which is committed and deployed as ConfigMaps; a test fails when the two drift apart."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder

from dashboards import fleet_overview, server

GENERATED = Path(__file__).resolve().parent / "generated"

# File stem (also the ConfigMap's key) -> builder.
DASHBOARDS: dict[str, Callable[[], Any]] = {
    fleet_overview.UID: fleet_overview.build,
    server.UID: server.build,
}


def render(build: Callable[[], Any]) -> str:
    data = build().to_json_data()
    return json.dumps(data, cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


def rendered() -> dict[str, str]:
    """Every dashboard's JSON by file name under GENERATED."""
    return {f"{name}.json": render(build) for name, build in DASHBOARDS.items()}
