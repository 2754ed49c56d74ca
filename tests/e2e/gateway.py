"""The prod data plane end to end on one machine: two HAProxy replicas running the gateway configuration
`mcpfleet plan --env prod` ships, byte for byte, in front of two MCP router replicas running the plan's
router.json, byte for byte, in front of the fleet's real servers (notes x2, units, text,
server-everything, the conformance target). Every process is real; what a cluster would give the pods is
made up, and nothing else:

- cluster DNS (tests/sandbox.py) answers the router's headless Service with both router replicas'
  addresses, and each server's headless `<server>-gateway` Service with its replicas' addresses; HAProxy
  and the routers run in a private mount namespace whose /etc/resolv.conf points there, so they resolve
  cluster names as in a pod;
- every replica listens on a loopback address of its own (a pod IP), on the port its pod would use;
- a self-signed certificate stands in for cert-manager's, a throwaway key pair for the identity
  provider, and one session-keys file (the Secret) is shared by both router replicas.

Every process runs in its own process group and is stopped whole, even when a test fails.

The API (for the e2e tests and the adversarial corpus in tests/e2e/attacks/):

- `running_fleet(workdir)`: a context manager yielding a `RunningFleet`, all of it running.
- `RunningFleet`: `url(server, gateway=0)`, `fleet_url(gateway=0)` (the fleet endpoint, /mcp) and
  `endpoint(gateway)` (https, `tls()` trusts it); `issuer.token(server, subject, roles="engineer",
  **claims)` mints a valid bearer token for a server, `issuer.fleet_token(subject, roles, **claims)` one
  for the fleet endpoint (its own audience, https://<domain>/mcp) (`issuer.sign` signs any claims,
  `issuer.key` is the private key); `replicas[server]`, `routers`, `gateways` with
  `start_*`, `stop_*`, `kill_*` and `whole()` (everything back up and served); `planned` is the plan.
- What happened: `mark()` then `server_calls(since)` (what the reference servers and the conformance
  target executed: `tests.e2e.ServerCall`), `audit_records(since)` and `forward_records(since)` (the
  routers' full and write-ahead audit records),
  `gateway_entries(since)` (HAProxy's access logs), `listing_records(since)` (the routers' records of
  their own listing requests), and `audit(since, excused=...)`, which joins them by request id and lists
  every disagreement (`tests.e2e.audit.check`); `wait_audit(since,
  request_ids=...)` waits for records still being written (a record is written when its answer ends)
  and returns the join: call `.assert_agrees()` on it, and look up the records of the request ids your
  client got back (every answer through the gateway carries its X-Request-ID) in `.records`.
- Fixtures (tests/e2e/conftest.py): `fleet`, one RunningFleet for the whole test session (a test that
  kills something calls `fleet.whole()` before it ends, a test that needs it whole calls it first), and
  `audited`, which joins what happened during the test when it ends and fails it on any disagreement
  (add request ids to `audited.excused` for messages a killed replica carried).
- Clients: `request(url, tls, token, body, headers)` sends one raw POST and returns (status, headers,
  JSON or text); `mcp_client(url, token, mode, tls, seen)` is the mcp SDK's client (`legacy` or
  `MODERN`), `Seen` collects the answers it got (status, replica, X-Request-ID, method and tool).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mcp import Client

from components.gateway.config import CERT_DIR_ENV, CONFIG_DIR_ENV, JWT_KEY_ENV, ROUTER_BACKEND
from components.manifests import gateway as gateway_manifests
from components.manifests import router as router_manifests
from components.manifests.gateway import (
    ADDRESS_ENV,
    METRICS_PATH,
    METRICS_PORT,
    ROUTER_HEALTH_PATH,
    ROUTER_METRICS_PORT,
    ROUTER_PORT,
    endpoints_host,
    router_endpoints_host,
    serving_port,
)
from components.manifests.labels import GATEWAY_NAME, ROUTER_NAME
from mcpfleet.dev import process
from mcpfleet.dev.gateway import self_signed
from mcpfleet.fleet import FLEET_PATH, Fleet, FleetServer
from mcpfleet.model import EnvName
from mcpfleet.router.local import new_session_keys, session_keys_text
from tests.e2e import node
from tests.e2e.audit import (
    Audit,
    AuditRecord,
    ForwardRecord,
    ListingRecord,
    ServerCall,
    audit_lines,
    check,
    forward_lines,
    json_lines,
    listing_lines,
)
from tests.sandbox import Records, cluster_dns, in_sandbox

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
EXAMPLES_CATALOG = REPO / "examples" / "catalog"
# Entries only these tests need (the conformance suite's target), planned together with the examples.
E2E_CATALOG = Path(__file__).resolve().parent / "catalog"
LISTEN_HOST = Path(__file__).resolve().parent / "listen_host.mjs"
ENV: EnvName = "prod"
MODERN = "2026-07-28"
REPLICA_HEADER = "x-replica-id"
SESSION_HEADER = "mcp-session-id"
REQUEST_ID_HEADER = "x-request-id"

# One loopback address per gateway replica (MCP_GATEWAY_ADDRESS), as pods have one IP each.
GATEWAY_ADDRESSES = ("127.0.0.2", "127.0.0.3")
# One per router replica; each listens on the router's ports there, as in its pod.
ROUTER_ADDRESSES = ("127.0.0.21", "127.0.0.22")
# Each server's replicas: every one on the catalog's port, on addresses of their own, like pods.
REPLICA_ADDRESSES: Mapping[str, tuple[str, ...]] = {
    "notes": ("127.0.0.31", "127.0.0.32"),
    "units": ("127.0.0.33",),
    "text": ("127.0.0.34",),
    "everything": ("127.0.0.35",),
    # The conformance suite's dns-rebinding scenario wants a URL on 127.0.0.1 or localhost.
    "conformance": ("127.0.0.1",),
}
# Servers whose every replica writes what it executed (examples/servers/common.py CallLog, and the
# conformance target); server-everything cannot, and is compared through what it returns.
RECORDED_SERVERS = frozenset({"notes", "units", "text", "conformance"})
START_TIMEOUT = 60.0
SERVED_TIMEOUT = 45.0
AUDIT_TIMEOUT = 10.0


class HarnessError(Exception):
    """The fleet, a router or a gateway could not be brought up as the tests need it."""


# The plan


@dataclass(frozen=True)
class PlannedGateway:
    """`mcpfleet plan --env prod` of the e2e catalog: the fleet, and the ConfigMaps' data as planned."""

    fleet: Fleet
    files: dict[str, str]
    """Every key of the gateway's mcp-gateway-config ConfigMap: HAProxy's config directory."""
    router_files: dict[str, str]
    """Every key of the router's ConfigMaps, as its pods' volume shows them: router.json (and, for a fleet
    too large for one ConfigMap, the server files it names, from mcp-router-config-servers-*)."""
    returncode: int
    output: str
    catalog: Path
    out_dir: Path

    @property
    def router_json(self) -> str:
        return self.router_files[router_manifests.CONFIG_KEY]


def e2e_catalog(directory: Path) -> Path:
    """examples/catalog's servers and tests/e2e/catalog's, as one catalog folder."""
    servers = directory / "servers"
    servers.mkdir(parents=True)
    for source in (EXAMPLES_CATALOG, E2E_CATALOG):
        for entry in sorted((source / "servers").glob("*.yaml")):
            if (servers / entry.name).exists():
                raise HarnessError(f"{entry.name} is in both {EXAMPLES_CATALOG} and {E2E_CATALOG}")
            shutil.copyfile(entry, servers / entry.name)
    return directory


def planned_config_maps(out_dir: Path) -> dict[str, dict[str, str]]:
    """Every ConfigMap of the plan's platform manifests, by name: its data."""
    maps: dict[str, dict[str, str]] = {}
    for manifest in sorted((out_dir / "manifests" / "platform").glob("*.yaml")):
        for obj in yaml.safe_load_all(manifest.read_text(encoding="utf-8")):
            if obj and obj.get("kind") == "ConfigMap":
                name = obj["metadata"]["name"]
                if name in maps:
                    raise HarnessError(f"two ConfigMaps named {name} in {out_dir}")
                maps[name] = obj.get("data", {})
    return maps


def router_config_files(maps: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The router's configuration directory as its pods' projected volume shows it: every key of its
    ConfigMap and of its server files' ConfigMaps (components.manifests.router.config_map_name)."""
    prefix = f"{router_manifests.CONFIG_MAP_NAME}-servers-"
    files: dict[str, str] = {}
    for name, data in sorted(maps.items()):
        if name == router_manifests.CONFIG_MAP_NAME or name.startswith(prefix):
            files.update(data)
    return files


def plan_gateway(catalog: Path, out_dir: Path) -> PlannedGateway:
    """Run the plan command as users do and read the gateway's and the router's ConfigMaps it wrote."""
    command = ["mcpfleet", "plan", "--env", ENV, "--catalog", str(catalog), "--out", str(out_dir)]
    result = subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
    )
    maps = planned_config_maps(out_dir)
    wanted = (gateway_manifests.CONFIG_MAP_NAME, router_manifests.CONFIG_MAP_NAME)
    missing = [name for name in wanted if name not in maps]
    if missing:
        raise HarnessError(
            f"the plan wrote no ConfigMap {', '.join(missing)} (exit {result.returncode}):\n{result.stderr}"
        )
    from mcpfleet.plan.run import load_inputs  # the Pulumi program's imports: only where a plan is read

    _, fleet = load_inputs(ENV, catalog, STACKS)
    return PlannedGateway(
        fleet,
        dict(maps[gateway_manifests.CONFIG_MAP_NAME]),
        router_config_files(maps),
        result.returncode,
        result.stdout + result.stderr,
        catalog,
        out_dir,
    )


def write_config(files: Mapping[str, str], directory: Path) -> Path:
    """A ConfigMap's keys as the pod's volume shows them: one file each, bytes unchanged; the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_bytes(text.encode("utf-8"))
    return directory


# Identity and TLS


class Issuer:
    """The environment's identity provider, for these tests: mints bearer tokens the gateway verifies."""

    def __init__(self, fleet: Fleet, directory: Path) -> None:
        self.fleet = fleet
        self.auth = fleet.settings.gateway.auth
        self.key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if self.auth.algorithm.startswith("ES"):
            curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
            self.key = ec.generate_private_key(curves[self.auth.algorithm])
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        directory.mkdir(parents=True, exist_ok=True)
        self.public_key_file = directory / "issuer.pem"
        self.public_key_file.write_bytes(
            self.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def claims(self, server: str, subject: str, roles: Any = "engineer", **claims: Any) -> dict[str, Any]:
        """The claims of a valid token for server (its audience), for subject with roles."""
        now = int(time.time())
        return {
            "iss": self.auth.issuer,
            "aud": self.fleet.audience(server),
            self.auth.subject_claim: subject,
            self.auth.roles_claim: roles,
            "iat": now,
            "exp": now + 3600,
            **claims,
        }

    def sign(self, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> str:
        """Any claims, signed with the issuer's key and algorithm."""
        return jwt.encode(dict(claims), self.key, algorithm=self.auth.algorithm, headers=dict(headers or {}))

    def token(self, server: str, subject: str, roles: Any = "engineer", **claims: Any) -> str:
        """A token for server (its audience), for subject with roles (a space-separated string or a list)."""
        return self.sign(self.claims(server, subject, roles, **claims))

    def fleet_claims(self, subject: str, roles: Any = "engineer", **claims: Any) -> dict[str, Any]:
        """The claims of a valid token for the fleet endpoint: its own audience, https://<domain>/mcp."""
        return {**self.claims("", subject, roles), "aud": self.fleet.endpoint_audience, **claims}

    def fleet_token(self, subject: str, roles: Any = "engineer", **claims: Any) -> str:
        """A token for the fleet endpoint (/mcp), for subject with roles."""
        return self.sign(self.fleet_claims(subject, roles, **claims))


def trusting(certificate: Path) -> ssl.SSLContext:
    """A client TLS context that trusts certificate alone (hostname checks on)."""
    return ssl.create_default_context(cafile=str(certificate))


# The running fleet


@dataclass(frozen=True)
class Mark:
    """A point in the run: how many lines each log had. Logs only grow (a restart opens a new one)."""

    lines: Mapping[Path, int]
    at: float = 0.0
    """When it was made (seconds since the epoch)."""

    def start(self, path: Path) -> int:
        return self.lines.get(path, 0)


BEGINNING = Mark({})


@dataclass
class Replica:
    """One server process, as one pod of its Deployment."""

    server: str
    index: int
    address: str
    port: int
    call_log: Path | None
    """Where it writes each message it executes (None: server-everything, which cannot)."""
    child: process.Child | None = None
    drift: bool = False

    @property
    def label(self) -> str:
        """Its X-Replica-Id (the examples servers send it) and its name in call records."""
        return f"{self.server}-{self.index}"

    @property
    def stop_signal(self) -> signal.Signals:
        # server-everything closes and exits 0 on SIGINT.
        return signal.SIGINT if self.server == "everything" else signal.SIGTERM

    def running(self) -> bool:
        return self.child is not None and self.child.running()

    def calls(self, since: Mark = BEGINNING) -> list[ServerCall]:
        if self.call_log is None:
            return []
        entries, _ = json_lines(self.call_log, since.start(self.call_log))
        return [ServerCall.from_line(self.server, entry) for entry in entries]


@dataclass
class Pod:
    """One replica of the gateway's or the router's Deployment: a process and its logs, one per start."""

    index: int
    name: str
    address: str
    log_dir: Path
    child: process.Child | None = None
    logs: list[Path] = field(default_factory=list)
    """One log per start, oldest first."""

    def running(self) -> bool:
        return self.child is not None and self.child.running()

    def next_log(self) -> Path:
        self.logs.append(self.log_dir / f"{self.name}.{len(self.logs) + 1}.log")
        return self.logs[-1]

    def entries(self, since: Mark = BEGINNING) -> list[dict[str, Any]]:
        """The JSON lines of every start's log (HAProxy's access log; the router's audit records)."""
        found: list[dict[str, Any]] = []
        for log in self.logs:
            entries, _ = json_lines(log, since.start(log))
            found += entries
        return found


class Gateway(Pod):
    """One HAProxy process: one replica of the gateway Deployment."""


@dataclass
class RouterReplica(Pod):
    """One `python -m mcpfleet.router` process: one replica of the router Deployment."""

    _listings: dict[Path, tuple[int, list[ListingRecord]]] = field(default_factory=dict)
    """Listing records read so far, per log: (lines read, records), so each check reads only what is new."""

    def audit_records(self, since: Mark = BEGINNING) -> list[AuditRecord]:
        return audit_lines(self.name, self.entries(since))

    def forward_records(self, since: Mark = BEGINNING) -> list[ForwardRecord]:
        return forward_lines(self.name, self.entries(since))

    def listing_records(self) -> list[ListingRecord]:
        """Every record of the router's own listing requests, over every start's log."""
        found: list[ListingRecord] = []
        for log in self.logs:
            read, records = self._listings.get(log, (0, []))
            entries, lines = json_lines(log, read)
            records = records + listing_lines(self.name, entries)
            self._listings[log] = (lines, records)
            found += records
        return found


@dataclass
class RunningFleet:
    """The servers, the routers, the gateways, and what clients need to reach them."""

    planned: PlannedGateway
    config_dir: Path
    """HAProxy's: the gateway ConfigMap's keys."""
    router_config_dir: Path
    """The router's: the router ConfigMap's keys."""
    session_keys_file: Path
    workdir: Path
    certificate: Path
    issuer: Issuer
    dns: Records
    dns_answers: dict[str, list[str]]
    """What cluster DNS answers now, by name (change it with set_dns)."""
    resolv_conf: Path
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
    routers: list[RouterReplica] = field(default_factory=list)
    gateways: list[Gateway] = field(default_factory=list)

    @property
    def fleet(self) -> Fleet:
        return self.planned.fleet

    @property
    def port(self) -> int:
        return serving_port(self.fleet.settings)

    def endpoint(self, gateway: int = 0) -> str:
        return f"https://{GATEWAY_ADDRESSES[gateway]}:{self.port}"

    def url(self, server: str, gateway: int = 0) -> str:
        return f"{self.endpoint(gateway)}/servers/{server}/mcp"

    def fleet_url(self, gateway: int = 0) -> str:
        """The fleet endpoint: one MCP server over every server (`https://<domain>/mcp`)."""
        return f"{self.endpoint(gateway)}{FLEET_PATH}"

    def server(self, name: str) -> FleetServer:
        return next(s for s in self.fleet.servers if s.name == name)

    def tls(self) -> ssl.SSLContext:
        return trusting(self.certificate)

    def set_dns(self, name: str, addresses: Sequence[str]) -> None:
        """Change what cluster DNS answers for name, as kube-dns does when pods come and go."""
        self.dns.set(name, addresses)
        self.dns_answers[name] = list(addresses)

    # Servers

    def start_replica(self, replica: Replica, drift: bool = False) -> None:
        """Start (or restart) one replica of an examples server or of the conformance target."""
        if replica.running():
            raise HarnessError(f"{replica.label} is running already")
        server = self.server(replica.server)
        log = self.workdir / "logs" / f"{replica.label}.log"
        if replica.server == "everything":
            # `mcp-server-everything streamableHttp` on PORT, run by the locked Node 22, with no Host
            # check; it has no host setting either (it listens on every address): listen_host.mjs pins it
            # to the replica's address, as a pod has one.
            argv = [str(node.node_binary()), "--import", LISTEN_HOST.as_uri(), str(node.EVERYTHING)]
            argv.append("streamableHttp")
            env = {
                **node.node_env(process_env()),
                "PORT": str(replica.port),
                "MCP_LISTEN_HOST": replica.address,
            }
        elif replica.server == "conformance":
            # tests/e2e/conformance_server.py's server, also accepting the gateways' addresses as Host
            # (see serve_conformance_target).
            argv = [sys.executable, "-m", "tests.e2e.gateway", "--host", replica.address]
            argv += ["--port", str(replica.port), "--replica-id", replica.label]
            for address in GATEWAY_ADDRESSES:
                argv += ["--allowed-host", f"{address}:*"]
            # The routers list it with the public name as Host, as they list every server.
            argv += ["--allowed-host", self.fleet.settings.domain.removeprefix("*.")]
            env = dict(process_env())
        else:
            argv = [sys.executable, "-m", f"examples.servers.{replica.server}"]
            argv += ["--host", replica.address, "--port", str(replica.port), "--replica-id", replica.label]
            # What clients send here besides the public name the catalog allows: the gateways' addresses.
            for address in GATEWAY_ADDRESSES:
                argv += ["--allowed-host", f"{address}:*"]
            if drift:
                argv.append("--drift")
            # The pod's environment as the catalog gives it in prod (MCP_ALLOWED_HOSTS: the public name).
            env = {**process_env(), **server.env}
        if replica.call_log is not None:
            argv += ["--call-log", str(replica.call_log)]
        replica.drift = drift
        replica.child = process.start(replica.label, argv, log, env=env, cwd=REPO, port=replica.port)

    def wait_replica(self, replica: Replica) -> None:
        assert replica.child is not None
        process.wait_for_port(replica.child, replica.address, replica.port, START_TIMEOUT)

    def kill_replica(self, replica: Replica) -> None:
        """SIGKILL, as a node failure or the OOM killer would: no goodbye to anyone."""
        if replica.child is not None:
            process.stop(replica.child, signal.SIGKILL)

    def stop_replica(self, replica: Replica) -> None:
        if replica.child is not None:
            process.stop(replica.child, replica.stop_signal)

    def restart_replica(self, replica: Replica, drift: bool = False) -> None:
        self.stop_replica(replica)
        self.start_replica(replica, drift)
        self.wait_replica(replica)

    # Routers

    def start_router(self, index: int) -> RouterReplica:
        """The router's container command as the plan's Deployment gives it, with this replica's address
        for 0.0.0.0 and the files where the pod mounts them: in the sandbox, so it resolves cluster names."""
        router = self.routers[index]
        if router.running():
            raise HarnessError(f"{router.name} is running already")
        argv = [sys.executable, "-m", "mcpfleet.router"]
        argv += ["--config", str(self.router_config_dir / router_manifests.CONFIG_KEY)]
        argv += ["--jwt-key", str(self.issuer.public_key_file)]
        argv += ["--session-keys", str(self.session_keys_file)]
        argv += ["--host", router.address, "--port", str(ROUTER_PORT)]
        argv += ["--metrics-port", str(ROUTER_METRICS_PORT)]
        # Clients reach the gateway replicas by their addresses (no DNS for the public name here): the
        # fleet endpoint accepts them as Host, as the servers do (--allowed-host there too).
        for address in GATEWAY_ADDRESSES:
            argv += ["--allowed-host", address]
        router.child = process.start(
            router.name, in_sandbox(self.resolv_conf, argv), router.next_log(), env=process_env(), cwd=REPO
        )
        return router

    def wait_router(self, index: int, timeout: float = START_TIMEOUT) -> dict[str, int]:
        """Until the router answers its health check having resolved every server's pods (as many as DNS
        names); returns its pods per server."""
        router = self.routers[index]
        expected = {
            server.name: len(self.dns_answers.get(endpoints_host(server), ()))
            for server in self.fleet.servers
        }
        deadline = time.monotonic() + timeout
        pods: dict[str, int] = {}
        while time.monotonic() < deadline:
            if not router.running():
                raise HarnessError(f"{router.name} exited:\n{process.log_tail(router.logs[-1], 40)}")
            pods = router_health(router.address).get("pods", {})
            if pods == expected:
                return pods
            time.sleep(0.1)
        raise HarnessError(
            f"{router.name}: pods {pods}, expected {expected} within {timeout:.0f}s\n"
            + process.log_tail(router.logs[-1], 40)
        )

    def stop_router(self, index: int, sig: signal.Signals = signal.SIGTERM) -> None:
        router = self.routers[index]
        if router.child is not None:
            process.stop(router.child, sig)

    def kill_router(self, index: int) -> None:
        """SIGKILL: in-flight requests are cut and their full audit records never written (their forward
        records were, before they were sent)."""
        self.stop_router(index, signal.SIGKILL)

    # Gateways

    def gateway_env(self, gateway: Gateway) -> dict[str, str]:
        """What the pod gives HAProxy: its name, its address, and where the mounts are."""
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME": gateway.name,
            ADDRESS_ENV: gateway.address,
            CONFIG_DIR_ENV: str(self.config_dir),
            CERT_DIR_ENV: str(self.certificate.parent),
            JWT_KEY_ENV: str(self.issuer.public_key_file),
        }

    def start_gateway(self, index: int) -> Gateway:
        gateway = self.gateways[index]
        if gateway.running():
            raise HarnessError(f"{gateway.name} is running already")
        config = self.config_dir / gateway_manifests.CONFIG_KEY
        argv = in_sandbox(self.resolv_conf, [haproxy(), "-db", "-f", str(config)])
        gateway.child = process.start(gateway.name, argv, gateway.next_log(), env=self.gateway_env(gateway))
        return gateway

    def stop_gateway(self, index: int, sig: signal.Signals = signal.SIGTERM) -> None:
        gateway = self.gateways[index]
        if gateway.child is not None:
            process.stop(gateway.child, sig)

    def wait_served(self, index: int, timeout: float = SERVED_TIMEOUT, routers: int | None = None) -> int:
        """Until the gateway has every running router replica UP in its router pool (DNS resolved, health
        checks passed), or `routers` of them; returns how many are UP."""
        gateway = self.gateways[index]
        expected = sum(1 for router in self.routers if router.running()) if routers is None else routers
        deadline = time.monotonic() + timeout
        up = 0
        while time.monotonic() < deadline:
            if not gateway.running():
                raise HarnessError(f"{gateway.name} exited:\n{process.log_tail(gateway.logs[-1], 40)}")
            try:
                up = routers_up(scrape(gateway.address))
            except OSError:
                up = 0
            if up == expected:
                return up
            time.sleep(0.25)
        raise HarnessError(
            f"{gateway.name}: {up} router replicas UP, expected {expected} within {timeout:.0f}s\n"
            + process.log_tail(gateway.logs[-1], 40)
        )

    def may_call(self, server: str, roles: Collection[str]) -> set[str]:
        """The tools of server that callers with roles may call, by the catalog's access rules alone."""
        spec = self.server(server).spec
        declared = {tool.name for tool in spec.tools}
        allowed: set[str] = set()
        for rule in spec.access:
            if set(rule.roles) & set(roles):
                allowed |= declared if "*" in rule.tools else set(rule.tools) & declared
        return allowed

    def wait_listings(
        self, withheld: Mapping[str, Mapping[str, str]] | None = None, timeout: float = SERVED_TIMEOUT
    ) -> None:
        """Until every running router replica holds a listing of every server and withholds exactly the
        tools named (server -> tool -> reason: `drifted` or `unpinned`; default: none), by its metrics:
        a restarted server is listed again once the router's held connection to it is lost."""
        wanted = {
            (server, tool): reason
            for server, tools in (withheld or {}).items()
            for tool, reason in tools.items()
        }
        servers = {server.name for server in self.fleet.servers}
        deadline = time.monotonic() + timeout
        while True:
            seen: dict[str, Any] = {}
            for router in self.routers:
                if not router.running():
                    continue
                try:
                    metrics = router_metrics(router.address)
                except OSError as error:
                    seen[router.name] = str(error)
                    continue
                up, held = listing_state(metrics)
                if up != servers or held != wanted:
                    seen[router.name] = {"not listed": sorted(servers - up), "withheld": held}
            if not seen:
                return
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"router listings not as expected ({wanted or 'nothing'} withheld): {seen}"
                )
            time.sleep(0.2)

    def whole(self) -> None:
        """Every replica, router and gateway running, both router replicas UP in every gateway, and each
        router holding a listing of every server, withholding no tool."""
        for replicas in self.replicas.values():
            for replica in replicas:
                if not replica.running():
                    self.restart_replica(replica)
        for router in self.routers:
            if not router.running():
                self.start_router(router.index)
                self.wait_router(router.index)
        for gateway in self.gateways:
            if not gateway.running():
                self.start_gateway(gateway.index)
        for gateway in self.gateways:
            self.wait_served(gateway.index)
        self.wait_listings()

    # What happened

    def _logs(self) -> list[Path]:
        paths = [r.call_log for rs in self.replicas.values() for r in rs if r.call_log is not None]
        for pod in [*self.routers, *self.gateways]:
            paths += pod.logs
        return paths

    def mark(self) -> Mark:
        """Now, to read only what happens from here on."""
        return Mark({path: json_lines(path)[1] for path in self._logs()}, time.time())

    def server_calls(self, since: Mark = BEGINNING) -> list[ServerCall]:
        """Every message the recorded servers' replicas executed (see RECORDED_SERVERS)."""
        return [call for rs in self.replicas.values() for replica in rs for call in replica.calls(since)]

    def audit_records(self, since: Mark = BEGINNING) -> list[AuditRecord]:
        return [record for router in self.routers for record in router.audit_records(since)]

    def forward_records(self, since: Mark = BEGINNING) -> list[ForwardRecord]:
        """The routers' write-ahead records: one per message sent upstream, written before it was sent."""
        return [record for router in self.routers for record in router.forward_records(since)]

    def listing_records(self, since: Mark = BEGINNING) -> list[ListingRecord]:
        """The routers' records of the requests their own listings sent servers (since: by time)."""
        return [r for router in self.routers for r in router.listing_records() if r.time >= since.at]

    def gateway_entries(self, since: Mark = BEGINNING) -> list[dict[str, Any]]:
        """HAProxy's access log of every gateway: one JSON object per request (`request_id`, `router`:
        the router slot that answered or `<NOSRV>`, `status`, `caller`, ...)."""
        return [
            {**entry, "gateway": gateway.name}
            for gateway in self.gateways
            for entry in gateway.entries(since)
            if "request_id" in entry and "termination" in entry
        ]

    def audit(self, since: Mark = BEGINNING, excused: Collection[str] = ()) -> Audit:
        """The routers' audit records joined with the servers' call logs and the gateways' access logs
        (tests.e2e.audit.check)."""
        return check(
            self.audit_records(since),
            self.server_calls(since),
            self.gateway_entries(since),
            recorded=RECORDED_SERVERS,
            excused=excused,
            forwards=self.forward_records(since),
            # All of them: a listing's record may fall before the stretch, the message it sent after.
            listings=self.listing_records(),
        )

    def wait_audit(
        self,
        since: Mark = BEGINNING,
        excused: Collection[str] = (),
        request_ids: Collection[str | None] = (),
        timeout: float = AUDIT_TIMEOUT,
    ) -> Audit:
        """`audit`, once it has no problems and an audit record of each of request_ids (the X-Request-ID
        answers carried back), or once timeout has passed: the router writes a record as the answer ends,
        a little after the client has the last byte (and a stream's when it closes), and HAProxy a log
        line when the connection's request ends."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.audit(since, excused)
            audited = {record.request_id for record in result.records}
            complete = all(request_id in audited for request_id in request_ids)
            if (not result.problems and complete) or time.monotonic() > deadline:
                return result
            time.sleep(0.2)


@dataclass
class Audited:
    """One test's stretch of the run, checked when the test ends (the `audited` fixture): request ids
    the test excuses (run, but never audited or logged because the router or gateway replica carrying
    them was killed), and the join, once made."""

    excused: set[str] = field(default_factory=set)
    result: Audit | None = None


def process_env() -> dict[str, str]:
    """This process's environment without what would change how a server starts."""
    return {key: value for key, value in os.environ.items() if key not in ("MCP_ALLOWED_HOSTS", "PORT")}


def haproxy() -> str:
    binary = shutil.which("haproxy")
    if binary is None:
        raise HarnessError("haproxy is not installed: `apt-get install -y haproxy` (HAProxy 2.6)")
    return binary


def dns_records(planned: PlannedGateway) -> dict[str, list[str]]:
    """What cluster DNS answers: each server's headless endpoints name -> its replicas' addresses; the
    router's headless Service -> both router replicas' addresses."""
    fleet = planned.fleet
    records: dict[str, list[str]] = {}
    for server in fleet.servers:
        if server.name not in REPLICA_ADDRESSES:
            raise HarnessError(f"no loopback addresses for server {server.name}")
        records[endpoints_host(server)] = list(REPLICA_ADDRESSES[server.name])
    records[router_endpoints_host(fleet.settings)] = list(ROUTER_ADDRESSES)
    return records


@contextlib.contextmanager
def running_fleet(workdir: Path) -> Iterator[RunningFleet]:
    """Plan, write the configs, start every server, both routers and both gateways; stop all of it on
    the way out."""
    planned = plan_gateway(e2e_catalog(workdir / "catalog"), workdir / "plan")
    config_dir = write_config(planned.files, workdir / "gateway-config")
    router_config_dir = write_config(planned.router_files, workdir / "router-config")
    settings = planned.fleet.settings
    certificate = self_signed(
        workdir / "certs", settings.domain.removeprefix("*."), ["127.0.0.1", *GATEWAY_ADDRESSES]
    )
    issuer = Issuer(planned.fleet, workdir / "jwt")
    # The router's Secret: one key, read by every replica.
    session_keys_file = workdir / "session" / router_manifests.SESSION_KEYS_KEY
    session_keys_file.parent.mkdir(parents=True)
    fd = os.open(session_keys_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as sink:
        sink.write(session_keys_text(new_session_keys()))
    logs = workdir / "logs"
    (workdir / "calls").mkdir()
    with ExitStack() as stack:
        answers = dns_records(planned)
        dns, resolv_conf = stack.enter_context(cluster_dns(answers, workdir))
        fleet = RunningFleet(
            planned,
            config_dir,
            router_config_dir,
            session_keys_file,
            workdir,
            certificate,
            issuer,
            dns,
            answers,
            resolv_conf,
        )
        stack.callback(_stop_all, fleet)
        fleet.gateways = [
            Gateway(index, f"{GATEWAY_NAME}-{index}", address, logs)
            for index, address in enumerate(GATEWAY_ADDRESSES)
        ]
        fleet.routers = [
            RouterReplica(index, f"{ROUTER_NAME}-{index}", address, logs)
            for index, address in enumerate(ROUTER_ADDRESSES)
        ]
        for server in planned.fleet.servers:
            port = server.spec.transport.port
            fleet.replicas[server.name] = [
                Replica(
                    server.name,
                    index + 1,
                    address,
                    port,
                    workdir / "calls" / f"{server.name}-{index + 1}.jsonl"
                    if server.name in RECORDED_SERVERS
                    else None,
                )
                for index, address in enumerate(REPLICA_ADDRESSES[server.name])
            ]
        started = [replica for replicas in fleet.replicas.values() for replica in replicas]
        for replica in started:
            fleet.start_replica(replica)
        for router in fleet.routers:
            fleet.start_router(router.index)
        for replica in started:
            fleet.wait_replica(replica)
        for router in fleet.routers:
            fleet.wait_router(router.index)
        for gateway in fleet.gateways:
            fleet.start_gateway(gateway.index)
        for gateway in fleet.gateways:
            fleet.wait_served(gateway.index)
        fleet.wait_listings()
        yield fleet


def _stop_all(fleet: RunningFleet) -> None:
    for pod in [*fleet.gateways, *fleet.routers]:
        if pod.child is not None:
            process.stop(pod.child)
    for replicas in fleet.replicas.values():
        for replica in replicas:
            fleet.stop_replica(replica)


# Metrics and health

_ROUTER_UP = re.compile(
    rf'^haproxy_server_status\{{proxy="{ROUTER_BACKEND}",server="([^"]+)",state="UP"\}} 1$'
)


def scrape(address: str, port: int = METRICS_PORT) -> str:
    with urllib.request.urlopen(f"http://{address}:{port}{METRICS_PATH}", timeout=5) as response:
        text: str = response.read().decode()
        return text


def routers_up(metrics: str) -> int:
    """Router replicas UP in a gateway's router pool, from its Prometheus exporter."""
    return sum(1 for line in metrics.splitlines() if _ROUTER_UP.match(line))


_WITHHELD = re.compile(
    r'^mcp_router_tool_withheld\{reason="([^"]+)",server="([^"]+)",tool="([^"]+)"\} 1\.0$', re.M
)
_LISTING_UP = re.compile(r'^mcp_router_listing_up\{server="([^"]+)"\} 1\.0$', re.M)


def router_metrics(address: str) -> str:
    """A router replica's Prometheus exposition."""
    with urllib.request.urlopen(
        f"http://{address}:{ROUTER_METRICS_PORT}{METRICS_PATH}", timeout=5
    ) as response:
        text: str = response.read().decode()
        return text


def listing_state(metrics: str) -> tuple[set[str], dict[tuple[str, str], str]]:
    """From a router's metrics: the servers it holds a listing of, and the tools it withholds (by server
    and tool: the reason)."""
    up = {match.group(1) for match in _LISTING_UP.finditer(metrics)}
    held = {(m.group(2), m.group(3)): m.group(1) for m in _WITHHELD.finditer(metrics)}
    return up, held


def router_health(address: str) -> dict[str, Any]:
    """A router replica's /healthz (`{"status": "ok", "pods": {server: resolved pods}}`), {} if none."""
    url = f"http://{address}:{ROUTER_METRICS_PORT}{ROUTER_HEALTH_PATH}"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except (OSError, ValueError):
        return {}


# Clients


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange a client had through the gateway."""

    http_method: str
    method: str | None
    """The JSON-RPC method it sent (None for GET and DELETE)."""
    tool: str | None
    status: int
    request_id: str | None
    """The gateway's X-Request-ID, as the answer carried it back."""
    replica: str | None


@dataclass
class Seen:
    """HTTP answers one client saw: statuses, the replicas that answered, sessions and every exchange."""

    statuses: list[int] = field(default_factory=list)
    replicas: list[str] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    exchanges: list[Exchange] = field(default_factory=list)

    async def __call__(self, response: httpx2.Response) -> None:
        self.statuses.append(response.status_code)
        replica = response.headers.get(REPLICA_HEADER)
        if replica:
            self.replicas.append(replica)
        session = response.headers.get(SESSION_HEADER)
        if session:
            self.sessions.add(session)
        method, tool = None, None
        request = response.request
        if request.method == "POST":
            with contextlib.suppress(ValueError, httpx2.RequestNotRead):
                body = json.loads(request.content)
                if isinstance(body, dict):
                    method = body.get("method")
                    params = body.get("params")
                    if method == "tools/call" and isinstance(params, dict):
                        tool = params.get("name")
        self.exchanges.append(
            Exchange(
                request.method,
                method,
                tool,
                response.status_code,
                response.headers.get(REQUEST_ID_HEADER),
                replica,
            )
        )


class Rerouted(httpx2.AsyncBaseTransport):
    """Sends every request to the address of the gateway replica currently chosen, as a network load
    balancer does when the replica a client reached is gone; the request is otherwise untouched (Host
    included)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, address: str) -> None:
        self.inner = inner
        self.address = address

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.url = request.url.copy_with(host=self.address)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def mcp_client(
    url: str,
    token: str | None,
    mode: str,
    tls: ssl.SSLContext,
    seen: Seen | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    timeout: float = 20.0,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[Client]:
    """The mcp SDK's client over Streamable HTTP: `legacy` (2025-11-25, initialize and a session) or a
    modern version (2026-07-28, no session), with a bearer token, this TLS trust and extra headers."""
    from mcp.client.streamable_http import streamable_http_client

    sent = {**(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    hooks: dict[str, list[Any]] = {"response": [seen]} if seen is not None else {}
    async with (
        httpx2.AsyncClient(
            headers=sent,
            timeout=httpx2.Timeout(timeout),
            verify=tls,
            event_hooks=hooks,
            transport=transport,
        ) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client,
    ):
        yield client


def result_text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


# Raw HTTP through the gateway


def request(
    url: str,
    tls: ssl.SSLContext | None,
    token: str | None = None,
    body: Mapping[str, Any] | bytes | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One POST of a JSON-RPC body (a mapping, or bytes sent as they are) to an https URL (trusting tls)
    or an http one; (status, lower-cased headers, JSON or text body). headers may be pairs, to send one
    name several times."""
    parts = urllib.parse.urlsplit(url)
    own = connection is None
    conn: http.client.HTTPConnection
    if connection is not None:
        conn = connection
    elif parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=10, context=tls)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    names = {name.lower() for name, _ in pairs}
    if isinstance(body, bytes):
        payload = body
    else:
        payload = json.dumps(body or {"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    defaults = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Content-Length", str(len(payload))),
    ]
    sent = [(name, value) for name, value in defaults if name.lower() not in names] + pairs
    if token is not None:
        sent.append(("Authorization", f"Bearer {token}"))
    try:
        # Only what the caller chose is sent: Host too, when it names one.
        conn.putrequest("POST", parts.path, skip_host="host" in names, skip_accept_encoding=True)
        for name, value in sent:
            conn.putheader(name, value)
        conn.endheaders(payload)
        response = conn.getresponse()
        data = response.read()
        text = data.decode("utf-8", errors="replace")
        answer: Any = text
        if response.getheader("content-type", "").startswith("application/json"):
            answer = json.loads(text)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, answer
    finally:
        if own:
            conn.close()


# A bearer-adding forwarder (for the conformance suite, which cannot send a token)


_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class BearerForwarder(ThreadingHTTPServer):
    """Plain HTTP on a loopback port -> the gateway over TLS, adding `Authorization: Bearer <token>`.

    Everything else passes unchanged, Host included (the gateway and the server behind it see the Host
    the client sent), and responses stream back as they arrive (SSE included)."""

    daemon_threads = True

    def __init__(self, upstream: tuple[str, int], tls: ssl.SSLContext, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _ForwardHandler)
        self.upstream = upstream
        self.tls = tls
        self.token = token
        self.forwarded: Counter[str] = Counter()
        """Requests forwarded, by HTTP method."""
        self._open: dict[http.client.HTTPSConnection, socket.socket] = {}
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def connect(self, method: str) -> http.client.HTTPSConnection:
        connection = http.client.HTTPSConnection(*self.upstream, timeout=60, context=self.tls)
        connection.connect()
        with self._lock:
            # The socket itself: http.client lets go of it once a response that ends the connection starts.
            self._open[connection] = connection.sock
            self.forwarded[method] += 1
        return connection

    def release(self, connection: http.client.HTTPSConnection) -> None:
        with self._lock:
            self._open.pop(connection, None)
        connection.close()

    def close_all(self) -> None:
        """Stop serving; end the streams still open (a client's standalone SSE stream stays open)."""
        self.shutdown()
        with self._lock:
            sockets = list(self._open.values())
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-stream is no error here."""


class _ForwardHandler(BaseHTTPRequestHandler):
    server: BearerForwarder
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Authorization"] = f"Bearer {self.server.token}"
        upstream = self.server.connect(self.command)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            no_body = response.status in (204, 304) or self.command == "HEAD"
            if response.length is not None or no_body:
                data = b"" if no_body else response.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := response.read1(65536):
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            # The client left, or close_all() ended the upstream stream under this thread.
            self.close_connection = True
        finally:
            self.server.release(upstream)

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def bearer_forwarder(upstream: tuple[str, int], tls: ssl.SSLContext, token: str) -> Iterator[BearerForwarder]:
    forwarder = BearerForwarder(upstream, tls, token)
    thread = threading.Thread(target=forwarder.serve_forever, daemon=True)
    thread.start()
    try:
        yield forwarder
    finally:
        forwarder.close_all()
        thread.join(timeout=5)


# The conformance target behind the gateway


def serve_conformance_target(argv: Sequence[str] | None = None) -> None:
    """`python -m tests.e2e.gateway --host 127.0.0.1 --port N --allowed-host H --call-log F`: the server of
    tests/e2e/conformance_server.py with the mcp SDK's own DNS-rebinding protection for a loopback server
    (Host and Origin must name 127.0.0.1, localhost or [::1], any port), plus the given hosts, writing
    each message it executes to F as the examples servers do.

    The conformance suite reaches it with Host 127.0.0.1:<port>, which the gateway passes through;
    `mcpfleet verify` and the SDK clients dial the gateways' own addresses, and send those."""
    import argparse

    from mcp.server.transport_security import TransportSecuritySettings

    from examples.servers.common import CallLog
    from tests.e2e.conformance_server import server

    parser = argparse.ArgumentParser(prog="python -m tests.e2e.gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--allowed-host", action="append", default=[])
    parser.add_argument("--replica-id", default="conformance")
    parser.add_argument("--call-log", help="Append one JSON line per message executed (as the examples do).")
    args = parser.parse_args(argv)
    if args.call_log:
        server.middleware.append(CallLog(args.call_log, args.replica_id))
    loopback = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    hosts = [*loopback, *args.allowed_host]
    origins = [f"http://{host}" for host in loopback]
    origins += [f"{scheme}://{host}" for host in args.allowed_host for scheme in ("http", "https")]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )
    server.run("streamable-http", host=args.host, port=args.port, transport_security=security)


if __name__ == "__main__":
    serve_conformance_target()
