"""The prod gateway end to end on one machine: the fleet's real servers behind the HAProxy configuration
that `mcpfleet plan --env prod` ships, byte for byte.

What a cluster would give the gateway pods is made up here, and nothing else: cluster DNS answers each
server's headless endpoints name with the loopback addresses its replicas listen on, and each gateway
peer's Service name with the address of that gateway replica (tests/sandbox.py); a self-signed
certificate stands in for cert-manager's; a throwaway RSA key pair stands in for the identity provider.
Every process runs in its own process group and is stopped whole, even when a test fails.
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
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
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

from components.gateway.config import CERT_DIR_ENV, CONFIG_DIR_ENV, JWT_KEY_ENV
from components.manifests.gateway import (
    ACCESS_CONFIG_MAP_NAME,
    ADDRESS_ENV,
    CONFIG_KEY,
    CONFIG_MAP_NAME,
    METRICS_PATH,
    METRICS_PORT,
    endpoints_host,
    peer_names,
    peer_service_host,
    serving_port,
)
from mcpfleet.dev import process
from mcpfleet.dev.gateway import self_signed
from mcpfleet.fleet import Fleet, FleetServer
from mcpfleet.model import EnvName
from tests.e2e import node
from tests.sandbox import Records, cluster_dns, in_sandbox

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
EXAMPLES_CATALOG = REPO / "examples" / "catalog"
# Entries only these tests need (the conformance suite's target), planned together with the examples.
E2E_CATALOG = Path(__file__).resolve().parent / "catalog"
ENV: EnvName = "prod"
MODERN = "2026-07-28"
REPLICA_HEADER = "x-replica-id"
SESSION_HEADER = "mcp-session-id"

# One loopback address per gateway replica (MCP_GATEWAY_ADDRESS), as pods have one IP each.
GATEWAY_ADDRESSES = ("127.0.0.2", "127.0.0.3")
# The peers the autoscaler may add (prod runs up to gateway.maxReplicas) resolve, as their Services do,
# but nothing answers there.
ABSENT_PEER_ADDRESS = "127.0.0.4"
# Each server's replicas: every one on the catalog's port, on addresses of their own, like pods.
REPLICA_ADDRESSES: Mapping[str, tuple[str, ...]] = {
    "notes": ("127.0.0.31", "127.0.0.32"),
    "units": ("127.0.0.33",),
    "text": ("127.0.0.34",),
    # server-everything listens on every address (it has no host setting); DNS names this one.
    "everything": ("127.0.0.35",),
    # The conformance suite's dns-rebinding scenario wants a URL on 127.0.0.1 or localhost, and the
    # baseline run goes straight to the server.
    "conformance": ("127.0.0.1",),
}
START_TIMEOUT = 60.0
SERVED_TIMEOUT = 45.0


class HarnessError(Exception):
    """The fleet or a gateway could not be brought up as the tests need it."""


# The plan


@dataclass(frozen=True)
class PlannedGateway:
    """`mcpfleet plan --env prod` of the e2e catalog: the fleet, and the gateway ConfigMaps' data."""

    fleet: Fleet
    files: dict[str, str]
    """Every key of the mcp-gateway-config and mcp-gateway-access ConfigMaps: the config directory."""
    returncode: int
    output: str
    catalog: Path
    out_dir: Path


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


def plan_gateway(catalog: Path, out_dir: Path) -> PlannedGateway:
    """Run the plan command as users do and read the gateway's ConfigMaps from what it wrote."""
    command = ["mcpfleet", "plan", "--env", ENV, "--catalog", str(catalog), "--out", str(out_dir)]
    result = subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    gateway_yaml = out_dir / "manifests" / "platform" / "gateway.yaml"
    if not gateway_yaml.is_file():
        raise HarnessError(f"the plan wrote no {gateway_yaml} (exit {result.returncode}):\n{result.stderr}")
    maps = {
        obj["metadata"]["name"]: obj.get("data", {})
        for obj in yaml.safe_load_all(gateway_yaml.read_text(encoding="utf-8"))
        if obj and obj.get("kind") == "ConfigMap"
    }
    files: dict[str, str] = {}
    for name in (CONFIG_MAP_NAME, ACCESS_CONFIG_MAP_NAME):
        for key, text in maps[name].items():
            if key in files:
                raise HarnessError(f"{key} is in two gateway ConfigMaps")
            files[key] = text
    from mcpfleet.plan.run import load_inputs  # the Pulumi program's imports: only where a plan is read

    _, fleet = load_inputs(ENV, catalog, STACKS)
    return PlannedGateway(fleet, files, result.returncode, result.stdout + result.stderr, catalog, out_dir)


def write_config(files: Mapping[str, str], directory: Path) -> Path:
    """The ConfigMaps' keys as the pod's projected volume shows them: one file each, bytes unchanged."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_bytes(text.encode("utf-8"))
    return directory / CONFIG_KEY


# Identity and TLS


class Issuer:
    """The environment's identity provider, for these tests: mints bearer tokens the gateway verifies."""

    def __init__(self, fleet: Fleet, directory: Path) -> None:
        self.fleet = fleet
        self.auth = fleet.settings.gateway.auth
        self._key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if self.auth.algorithm.startswith("ES"):
            curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
            self._key = ec.generate_private_key(curves[self.auth.algorithm])
        else:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        directory.mkdir(parents=True, exist_ok=True)
        self.public_key_file = directory / "issuer.pem"
        self.public_key_file.write_bytes(
            self._key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def token(self, server: str, subject: str, roles: str = "engineer", **claims: Any) -> str:
        """A token for server (its audience), for subject with roles (the claim is space-separated)."""
        now = int(time.time())
        payload = {
            "iss": self.auth.issuer,
            "aud": self.fleet.audience(server),
            self.auth.subject_claim: subject,
            self.auth.roles_claim: roles,
            "iat": now,
            "exp": now + 3600,
            **claims,
        }
        return jwt.encode(payload, self._key, algorithm=self.auth.algorithm)


def trusting(certificate: Path) -> ssl.SSLContext:
    """A client TLS context that trusts certificate alone (hostname checks on)."""
    return ssl.create_default_context(cafile=str(certificate))


# The running fleet


@dataclass
class Replica:
    """One server process, as one pod of its Deployment."""

    server: str
    index: int
    address: str
    port: int
    child: process.Child | None = None
    drift: bool = False

    @property
    def label(self) -> str:
        """Its X-Replica-Id (the examples servers send it)."""
        return f"{self.server}-{self.index}"

    @property
    def stop_signal(self) -> signal.Signals:
        # server-everything closes and exits 0 on SIGINT.
        return signal.SIGINT if self.server == "everything" else signal.SIGTERM


@dataclass
class Gateway:
    """One HAProxy process: one replica of the gateway StatefulSet."""

    index: int
    pod: str
    address: str
    log_dir: Path
    child: process.Child | None = None
    logs: list[Path] = field(default_factory=list)
    """One log per start, oldest first."""

    def running(self) -> bool:
        return self.child is not None and self.child.running()


@dataclass
class RunningFleet:
    """The servers, the gateways, and what clients need to reach them."""

    planned: PlannedGateway
    config_dir: Path
    workdir: Path
    certificate: Path
    issuer: Issuer
    dns: Records
    resolv_conf: Path
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
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

    def server(self, name: str) -> FleetServer:
        return next(s for s in self.fleet.servers if s.name == name)

    def tls(self) -> ssl.SSLContext:
        return trusting(self.certificate)

    # Servers

    def start_replica(self, replica: Replica, drift: bool = False) -> None:
        """Start (or restart) one replica of an examples server or of the conformance target."""
        if replica.child is not None and replica.child.running():
            raise HarnessError(f"{replica.label} is running already")
        server = self.server(replica.server)
        log = self.workdir / "logs" / f"{replica.label}.log"
        if replica.server == "everything":
            # `mcp-server-everything streamableHttp` on PORT: every address (it has no host setting) and
            # no Host check; run by the locked Node 22.
            argv = [str(node.node_binary()), str(node.EVERYTHING), "streamableHttp"]
            env = {**node.node_env(process_env()), "PORT": str(replica.port)}
        elif replica.server == "conformance":
            # tests/e2e/conformance_server.py's server, also accepting the gateways' addresses as Host
            # (see serve_conformance_target).
            argv = [sys.executable, "-m", "tests.e2e.gateway", "--host", replica.address]
            argv += ["--port", str(replica.port)]
            for address in GATEWAY_ADDRESSES:
                argv += ["--allowed-host", f"{address}:*"]
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

    # Gateways

    def gateway_env(self, gateway: Gateway) -> dict[str, str]:
        """What the pod gives HAProxy: its name, its address, and where the mounts are."""
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME": gateway.pod,
            ADDRESS_ENV: gateway.address,
            CONFIG_DIR_ENV: str(self.config_dir),
            CERT_DIR_ENV: str(self.certificate.parent),
            JWT_KEY_ENV: str(self.issuer.public_key_file),
        }

    def start_gateway(self, index: int) -> Gateway:
        gateway = self.gateways[index]
        if gateway.running():
            raise HarnessError(f"{gateway.pod} is running already")
        argv = in_sandbox(self.resolv_conf, [haproxy(), "-db", "-f", str(self.config_dir / CONFIG_KEY)])
        gateway.logs.append(gateway.log_dir / f"{gateway.pod}.{len(gateway.logs) + 1}.log")
        gateway.child = process.start(gateway.pod, argv, gateway.logs[-1], env=self.gateway_env(gateway))
        return gateway

    def stop_gateway(self, index: int, sig: signal.Signals = signal.SIGTERM) -> None:
        gateway = self.gateways[index]
        if gateway.child is not None:
            process.stop(gateway.child, sig)

    def wait_served(
        self, index: int, timeout: float = SERVED_TIMEOUT, expected: Mapping[str, int] | None = None
    ) -> dict[str, int]:
        """Until the gateway's backends have every running replica UP (DNS resolved, checks passed), or
        the expected number per server; returns the UP count per server."""
        gateway = self.gateways[index]
        expected = expected or {
            name: sum(1 for r in replicas if r.child is not None and r.child.running())
            for name, replicas in self.replicas.items()
        }
        deadline = time.monotonic() + timeout
        up: dict[str, int] = {}
        while time.monotonic() < deadline:
            if gateway.child is None or not gateway.child.running():
                raise HarnessError(f"{gateway.pod} exited:\n{process.log_tail(gateway.logs[-1], 40)}")
            try:
                up = servers_up(scrape(gateway.address))
            except OSError:
                up = {}
            if all(up.get(name, 0) >= count for name, count in expected.items()):
                return up
            time.sleep(0.25)
        raise HarnessError(
            f"{gateway.pod}: replicas UP {up}, expected {expected} within {timeout:.0f}s\n"
            + process.log_tail(gateway.logs[-1], 40)
        )

    def log_entries(self, index: int) -> list[dict[str, Any]]:
        """The gateway's access log, every start of it: one JSON object per request."""
        entries = []
        for log in self.gateways[index].logs:
            text = log.read_text(encoding="utf-8", errors="replace")
            entries += [json.loads(line) for line in text.splitlines() if line.startswith('{"time"')]
        return entries


def process_env() -> dict[str, str]:
    """This process's environment without what would change how a server starts."""
    return {key: value for key, value in os.environ.items() if key not in ("MCP_ALLOWED_HOSTS", "PORT")}


def haproxy() -> str:
    binary = shutil.which("haproxy")
    if binary is None:
        raise HarnessError("haproxy is not installed: `apt-get install -y haproxy` (HAProxy 2.6)")
    return binary


def dns_records(planned: PlannedGateway) -> dict[str, list[str]]:
    """What cluster DNS answers: each server's headless endpoints name -> its replicas' addresses, each
    gateway peer's Service -> that replica's address."""
    fleet = planned.fleet
    records: dict[str, list[str]] = {}
    for server in fleet.servers:
        if server.name not in REPLICA_ADDRESSES:
            raise HarnessError(f"no loopback addresses for server {server.name}")
        records[endpoints_host(server)] = list(REPLICA_ADDRESSES[server.name])
    for index, pod in enumerate(peer_names(fleet.settings)):
        address = GATEWAY_ADDRESSES[index] if index < len(GATEWAY_ADDRESSES) else ABSENT_PEER_ADDRESS
        records[peer_service_host(fleet.settings, pod)] = [address]
    return records


@contextlib.contextmanager
def running_fleet(workdir: Path) -> Iterator[RunningFleet]:
    """Plan, write the config, start every server and both gateways; stop all of it on the way out."""
    planned = plan_gateway(e2e_catalog(workdir / "catalog"), workdir / "plan")
    config_dir = workdir / "config"
    write_config(planned.files, config_dir)
    settings = planned.fleet.settings
    certificate = self_signed(
        workdir / "certs", settings.domain.removeprefix("*."), ["127.0.0.1", *GATEWAY_ADDRESSES]
    )
    issuer = Issuer(planned.fleet, workdir / "jwt")
    with ExitStack() as stack:
        dns, resolv_conf = stack.enter_context(cluster_dns(dns_records(planned), workdir))
        fleet = RunningFleet(planned, config_dir, workdir, certificate, issuer, dns, resolv_conf)
        stack.callback(_stop_all, fleet)
        fleet.gateways = [
            Gateway(index, pod, address, workdir / "logs")
            for index, (pod, address) in enumerate(zip(peer_names(settings), GATEWAY_ADDRESSES, strict=False))
        ]
        for server in planned.fleet.servers:
            port = server.spec.transport.port
            fleet.replicas[server.name] = [
                Replica(server.name, index + 1, address, port)
                for index, address in enumerate(REPLICA_ADDRESSES[server.name])
            ]
        started = [replica for replicas in fleet.replicas.values() for replica in replicas]
        for replica in started:
            fleet.start_replica(replica)
        for replica in started:
            fleet.wait_replica(replica)
        # Gateway 0 starts while notes has one ready pod and learns of the second later; gateway 1 starts
        # with both. HAProxy fills server-template slots as addresses appear (not in DNS answer order), so
        # the two gateways hold notes' pods under different server names, as replicas that resolved at
        # different times do in a cluster.
        notes = endpoints_host(fleet.server("notes"))
        fleet.dns.set(notes, REPLICA_ADDRESSES["notes"][:1])
        fleet.start_gateway(0)
        fleet.wait_served(
            0, expected={name: len(addresses[:1]) for name, addresses in REPLICA_ADDRESSES.items()}
        )
        fleet.dns.set(notes, REPLICA_ADDRESSES["notes"])
        fleet.start_gateway(1)
        fleet.wait_served(1)
        fleet.wait_served(0)
        yield fleet


def _stop_all(fleet: RunningFleet) -> None:
    for gateway in fleet.gateways:
        if gateway.child is not None:
            process.stop(gateway.child)
    for replicas in fleet.replicas.values():
        for replica in replicas:
            fleet.stop_replica(replica)


# Gateway metrics

_SERVER_STATUS = re.compile(
    r'^haproxy_server_status\{proxy="server_([^"]+)",server="([^"]+)",state="UP"\} 1$'
)


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}:{METRICS_PORT}{METRICS_PATH}", timeout=5) as response:
        text: str = response.read().decode()
        return text


def servers_up(metrics: str) -> dict[str, int]:
    up: dict[str, int] = {}
    for line in metrics.splitlines():
        match = _SERVER_STATUS.match(line)
        if match:
            up[match.group(1)] = up.get(match.group(1), 0) + 1
    return up


def stick_entries(metrics: str, table: str) -> int | None:
    """Entries in one of the gateway's stick tables (the exporter's haproxy_sticktable_used)."""
    for line in metrics.splitlines():
        if line.startswith(f'haproxy_sticktable_used{{name="{table}",'):
            return int(float(line.rsplit(" ", 1)[1]))
    return None


# Clients


@dataclass
class Seen:
    """HTTP answers one client saw: statuses and the replicas that answered."""

    statuses: list[int] = field(default_factory=list)
    replicas: list[str] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)

    async def __call__(self, response: httpx2.Response) -> None:
        self.statuses.append(response.status_code)
        replica = response.headers.get(REPLICA_HEADER)
        if replica:
            self.replicas.append(replica)
        session = response.headers.get(SESSION_HEADER)
        if session:
            self.sessions.add(session)


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
) -> AsyncIterator[Client]:
    """The mcp SDK's client over Streamable HTTP: `legacy` (2025-11-25, initialize and a session) or a
    modern version (2026-07-28, no session), with a bearer token and this TLS trust."""
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    hooks: dict[str, list[Any]] = {"response": [seen]} if seen is not None else {}
    async with (
        httpx2.AsyncClient(
            headers=headers,
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
    tls: ssl.SSLContext,
    token: str | None = None,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    connection: http.client.HTTPSConnection | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One POST of a JSON-RPC body; (status, lower-cased headers, JSON or text body)."""
    parts = urllib.parse.urlsplit(url)
    own = connection is None
    conn = connection or http.client.HTTPSConnection(
        parts.hostname or "", parts.port, timeout=10, context=tls
    )
    sent = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        **(headers or {}),
    }
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    payload = json.dumps(body or {"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    try:
        conn.request("POST", parts.path, body=payload, headers=sent)
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
    """`python -m tests.e2e.gateway --host 127.0.0.1 --port N --allowed-host H`: the server of
    tests/e2e/conformance_server.py with the mcp SDK's own DNS-rebinding protection for a loopback server
    (Host and Origin must name 127.0.0.1, localhost or [::1], any port), plus the given hosts.

    The conformance suite reaches it with Host 127.0.0.1:<port>, which the gateway passes through;
    `mcpfleet verify` and the SDK clients dial the gateways' own addresses, and send those."""
    import argparse

    from mcp.server.transport_security import TransportSecuritySettings

    from tests.e2e.conformance_server import server

    parser = argparse.ArgumentParser(prog="python -m tests.e2e.gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--allowed-host", action="append", default=[])
    args = parser.parse_args(argv)
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
