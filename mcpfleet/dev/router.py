"""The MCP router on one machine: the deployed router's code as a local process between HAProxy and the
servers started here, with router.json rendered from the fleet and the run's own keys.

router.json is the one every environment ships, but it names the local servers by address instead of
their headless Services. The router checks tokens against the run's throwaway issuer (the key HAProxy
checks them against), and seals legacy session ids with a key made for this run alone.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.gateway.router_config import render_router_config
from mcpfleet.fleet import Fleet
from mcpfleet.router.local import new_session_keys, session_keys_text

LOOPBACK = "127.0.0.1"
CONFIG_FILE = "router.json"
SESSION_KEYS_FILE = "session-keys"
AUDIT_FILE = "router-audit.jsonl"
LOG_FILE = "router.log"


@dataclass(frozen=True)
class RouterFiles:
    """What one run wrote for its router, and the command that starts it."""

    config: Path
    session_keys: Path
    port: int
    metrics_port: int
    argv: list[str]

    @property
    def health_url(self) -> str:
        return f"http://{LOOPBACK}:{self.metrics_port}/healthz"

    @property
    def metrics_url(self) -> str:
        return f"http://{LOOPBACK}:{self.metrics_port}/metrics"


def prepare(
    fleet: Fleet,
    servers: Mapping[str, Sequence[str]],
    issuer_key: Path,
    run_dir: Path,
    port: int,
    metrics_port: int,
    python: str = sys.executable,
) -> RouterFiles:
    """Write router.json (the servers started here, at their addresses) and a fresh session key file
    into run_dir/router; return them with the router's command line.

    Servers of the fleet that did not start here are left out: the router answers 404 for them, rather
    than resolving cluster names this machine does not have."""
    if port == metrics_port:
        raise ValueError("the router's MCP and metrics ports must differ")
    started = tuple(server for server in fleet.servers if server.name in servers)
    local = dataclasses.replace(fleet, servers=started)
    directory = run_dir / "router"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / CONFIG_FILE
    _write(config, render_router_config(local, upstreams=servers), private=False)
    keys = directory / SESSION_KEYS_FILE
    _write(keys, session_keys_text(new_session_keys()), private=True)
    argv = [python, "-m", "mcpfleet.router", "--config", str(config), "--jwt-key", str(issuer_key)]
    argv += ["--session-keys", str(keys), "--host", LOOPBACK]
    argv += ["--port", str(port), "--metrics-port", str(metrics_port)]
    return RouterFiles(config=config, session_keys=keys, port=port, metrics_port=metrics_port, argv=argv)


def _write(path: Path, text: str, private: bool) -> None:
    """Replace path at once; the session keys readable by this user only, from the first byte on."""
    temporary = path.with_name(f".{path.name}.tmp")
    # A leftover from an interrupted run keeps its mode when reopened: start from no file.
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    temporary.replace(path)
