"""The fleet the corpus attacks, as the attacker's kit sees it: the end-to-end harness's prod data plane
(tests/e2e/gateway.py: the prod plan's HAProxy configuration and router.json byte for byte, two HAProxy
and two router replicas, notes x2, units, text, server-everything, the conformance target), with
server-everything keeping its own record of what it ran (recorder.mjs) while the corpus runs."""

from __future__ import annotations

import contextlib
import signal
import ssl
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.manifests.gateway import METRICS_PATH, METRICS_PORT, ROUTER_METRICS_PORT
from mcpfleet.dev import process
from tests.e2e import node
from tests.e2e.audit import AuditRecord, ServerCall
from tests.e2e.gateway import BEGINNING, LISTEN_HOST, REPO, Mark, Replica, RunningFleet, process_env

RECORDER = Path(__file__).resolve().parent / "recorder.mjs"


class Issuer:
    """The environment's identity provider (the harness's key pair), as an attacker's helper uses it:
    genuine tokens with any claims, and the public key an HS/RS confusion signs with."""

    def __init__(self, fleet: RunningFleet) -> None:
        self._issuer = fleet.issuer
        self._fleet = fleet.fleet
        self.public_pem = fleet.issuer.public_key_file.read_bytes()

    @property
    def private_key(self) -> Any:
        return self._issuer.key

    def audience(self, server: str) -> str:
        return self._fleet.audience(server)

    def claims(self, server: str, subject: str, roles: Any, **extra: Any) -> dict[str, Any]:
        return self._issuer.claims(server, subject, roles, **extra)

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        return self._issuer.sign(claims, headers)


@dataclass(frozen=True)
class Endpoint:
    address: str
    metrics_url: str


class Stack:
    """Where to send, who signs, and what everyone recorded."""

    def __init__(self, fleet: RunningFleet) -> None:
        self.running = fleet
        self.issuer = Issuer(fleet)
        self.host = fleet.fleet.settings.domain.removeprefix("*.")
        """The public name clients use (Host, SNI); the servers accept it as their Host."""
        self.port = fleet.port
        self.gateways = [
            Endpoint(g.address, f"http://{g.address}:{METRICS_PORT}{METRICS_PATH}") for g in fleet.gateways
        ]
        self.routers = [
            Endpoint(r.address, f"http://{r.address}:{ROUTER_METRICS_PORT}/metrics") for r in fleet.routers
        ]
        self.replicas: dict[str, list[Replica]] = fleet.replicas

    def tls(self) -> ssl.SSLContext:
        return self.running.tls()

    def mark(self) -> Mark:
        return self.running.mark()

    def calls(self, since: Mark = BEGINNING) -> list[ServerCall]:
        """Every message the servers ran, by their own records (server-everything's included)."""
        return self.running.server_calls(since)

    def audit(self, since: Mark = BEGINNING) -> list[AuditRecord]:
        return self.running.audit_records(since)

    def router_pids(self) -> list[int]:
        """The router processes themselves (each runs under the shell that entered the sandbox)."""
        pids = []
        for router in self.running.routers:
            assert router.child is not None
            pids += [pid for pid in process.group_members(router.child.pgid) if _is_router(pid)]
        return pids


def _is_router(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"mcpfleet.router" in command


def fetch(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return str(answer.read().decode())


@contextlib.contextmanager
def recorded_everything(fleet: RunningFleet, directory: Path) -> Iterator[None]:
    """server-everything restarted with recorder.mjs, its calls among the fleet's server calls; put back
    as the harness runs it afterwards."""
    replicas = fleet.replicas["everything"]
    for replica in replicas:
        fleet.stop_replica(replica)
        replica.call_log = directory / f"{replica.label}.calls.jsonl"
        argv = [str(node.node_binary()), "--import", LISTEN_HOST.as_uri(), "--import", RECORDER.as_uri()]
        argv += [str(node.EVERYTHING), "streamableHttp"]
        env = {
            **node.node_env(process_env()),
            "PORT": str(replica.port),
            "MCP_LISTEN_HOST": replica.address,
            "MCP_CALL_LOG": str(replica.call_log),
            "MCP_REPLICA_ID": replica.label,
        }
        log = directory / f"{replica.label}.log"
        replica.child = process.start(replica.label, argv, log, env=env, cwd=REPO, port=replica.port)
        fleet.wait_replica(replica)
    try:
        yield
    finally:
        for replica in replicas:
            if replica.child is not None:
                process.stop(replica.child, signal.SIGINT)
            replica.call_log = None
            fleet.start_replica(replica)
            fleet.wait_replica(replica)


def source_address(index: int) -> str:
    """A loopback address of its own for case index: the gateway counts callers without a valid token
    per address, so one case's refusals never rate-limit the next."""
    return f"127.0.{8 + index // 250}.{index % 250 + 1}"
