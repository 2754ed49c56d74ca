"""The gateway the attack corpus runs against: the prod configuration of HAProxy and of the MCP router, as
the plan renders them, run by two HAProxy and two router processes in front of the examples' real servers.

Everything listens on loopback addresses of its own (127.0.9.0/24), so it can run beside the other
end-to-end tests. Cluster DNS is a small DNS server answering each headless Service's name with the
replicas' addresses; HAProxy and the routers run with it as their /etc/resolv.conf (tests/sandbox.py).
Every server writes its own record of each message it executed (the reference servers' --call-log;
recorder.mjs inside server-everything), and each router writes its audit records to its stdout.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from dnslib.server import DNSLogger, DNSServer

from components.gateway.config import CERT_DIR_ENV, CONFIG_DIR_ENV, JWT_KEY_ENV, render_gateway_config
from components.gateway.router_config import render_router_config
from components.manifests.gateway import (
    ADDRESS_ENV,
    CERT_FILE,
    CONFIG_KEY,
    KEY_FILE,
    METRICS_PATH,
    METRICS_PORT,
    ROUTER_METRICS_PORT,
    ROUTER_PORT,
    endpoints_host,
    router_endpoints_host,
    serving_port,
)
from mcpfleet.dev import process
from mcpfleet.fleet import Fleet
from mcpfleet.model import EnvName
from mcpfleet.router.local import new_session_keys, session_keys_text
from tests.e2e import node
from tests.sandbox import Records, in_sandbox, require_sandbox_tools

REPO = Path(__file__).resolve().parents[3]
CATALOG = REPO / "examples" / "catalog"
STACKS = REPO / "stacks"
ENV: EnvName = "prod"
RECORDER = Path(__file__).resolve().parent / "recorder.mjs"

DNS_ADDRESS = "127.0.9.153"
GATEWAY_ADDRESSES = ("127.0.9.2", "127.0.9.3")
ROUTER_ADDRESSES = ("127.0.9.41", "127.0.9.42")
REPLICA_ADDRESSES: Mapping[str, tuple[str, ...]] = {
    "notes": ("127.0.9.31", "127.0.9.32"),
    "units": ("127.0.9.33",),
    "text": ("127.0.9.34",),
    "everything": ("127.0.9.35",),
}
START_SECONDS = 60.0


class StackError(Exception):
    """The fleet could not be brought up."""


class Issuer:
    """The identity provider: an RSA key made for the run; signs tokens as the real issuer would."""

    def __init__(self, fleet: Fleet, directory: Path) -> None:
        self.fleet = fleet
        self.auth = fleet.settings.gateway.auth
        if self.auth.algorithm != "RS256":
            raise StackError(
                f"the corpus's forgeries assume RS256, the prod stack says {self.auth.algorithm}"
            )
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.public_key_file = directory / "issuer.pem"
        self.public_key_file.write_bytes(self.public_pem)

    def audience(self, server: str) -> str:
        return self.fleet.audience(server)

    def claims(self, server: str, subject: str, roles: Any = "support", **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.auth.issuer,
            "aud": self.audience(server),
            self.auth.subject_claim: subject,
            self.auth.roles_claim: roles,
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(extra)
        return claims

    def sign(self, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> str:
        return jwt.encode(dict(claims), self.private_key, algorithm="RS256", headers=dict(headers or {}))

    def token(self, server: str, subject: str, roles: Any = "support", **extra: Any) -> str:
        return self.sign(self.claims(server, subject, roles, **extra))


def self_signed(directory: Path, names: Sequence[str], addresses: Sequence[str]) -> Path:
    """A certificate for names and addresses, its key beside it as HAProxy's `ssl-load-extra-files key`
    expects (cert-manager's Secret layout)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcpfleet attack corpus")])
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alt += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CERT_FILE
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / KEY_FILE).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


@dataclass
class Replica:
    """One server process, as one pod."""

    server: str
    label: str
    address: str
    port: int
    call_log: Path
    child: process.Child | None = None

    def calls(self) -> list[dict[str, Any]]:
        if not self.call_log.exists():
            return []
        lines = self.call_log.read_text(encoding="utf-8").splitlines()
        return [{**json.loads(line), "server": self.server} for line in lines if line.strip()]


@dataclass
class RouterReplica:
    address: str
    audit: Path
    child: process.Child | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://{self.address}:{ROUTER_METRICS_PORT}/metrics"

    def records(self) -> list[dict[str, Any]]:
        if not self.audit.exists():
            return []
        lines = self.audit.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@dataclass
class GatewayReplica:
    address: str
    log: Path
    child: process.Child | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://{self.address}:{METRICS_PORT}{METRICS_PATH}"


@dataclass
class Stack:
    """What the corpus needs of the running fleet: where to send, who signs, and what everyone recorded."""

    fleet: Fleet
    workdir: Path
    issuer: Issuer
    certificate: Path
    config_dir: Path
    router_json: bytes
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
    routers: list[RouterReplica] = field(default_factory=list)
    gateways: list[GatewayReplica] = field(default_factory=list)

    @property
    def host(self) -> str:
        """The public name clients use (Host, SNI); servers accept it as their allowed Host."""
        return self.fleet.settings.domain.removeprefix("*.")

    @property
    def port(self) -> int:
        return serving_port(self.fleet.settings)

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate))

    def calls(self) -> list[dict[str, Any]]:
        """Every message every server executed, by its own record, each with its `server`."""
        return [call for replicas in self.replicas.values() for r in replicas for call in r.calls()]

    def audit(self) -> list[dict[str, Any]]:
        return [record for router in self.routers for record in router.records()]

    def router_pids(self) -> list[int]:
        """The router processes themselves (each runs under a shell that entered the sandbox)."""
        pids = []
        for router in self.routers:
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


_ROUTER_UP = re.compile(r'^haproxy_server_status\{proxy="mcp_router",server="[^"]+",state="UP"\} 1$', re.M)


def _routers_up(gateway: GatewayReplica) -> int:
    try:
        return len(_ROUTER_UP.findall(fetch(gateway.metrics_url)))
    except OSError:
        return 0


def _router_ready(router: RouterReplica, servers: Mapping[str, int]) -> bool:
    try:
        pods = json.loads(fetch(f"http://{router.address}:{ROUTER_METRICS_PORT}/healthz"))["pods"]
    except (OSError, ValueError, KeyError):
        return False
    return all(pods.get(name, 0) >= count for name, count in servers.items())


def _wait(what: str, ready: Any, children: Sequence[process.Child | None]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not ready():
        for child in children:
            if child is not None and not child.running():
                raise child.failure(f"exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise StackError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _process_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MCP_ALLOWED_HOSTS", "PORT", "MCP_CALL_LOG")}


def _start_replica(stack: Stack, replica: Replica) -> None:
    server = next(s for s in stack.fleet.servers if s.name == replica.server)
    log = stack.workdir / "logs" / f"{replica.label}.log"
    if replica.server == "everything":
        argv = [
            str(node.node_binary()),
            "--import",
            RECORDER.as_uri(),
            str(node.EVERYTHING),
            "streamableHttp",
        ]
        env = {
            **node.node_env(_process_env()),
            "PORT": str(replica.port),
            "MCP_CALL_LOG": str(replica.call_log),
            "MCP_REPLICA_ID": replica.label,
            "MCP_LISTEN_HOST": replica.address,
        }
    else:
        argv = [sys.executable, "-m", f"examples.servers.{replica.server}", "--host", replica.address]
        argv += ["--port", str(replica.port), "--replica-id", replica.label]
        argv += ["--call-log", str(replica.call_log)]
        # Besides the public name the catalog allows: the gateways' own addresses, which clients that
        # dial them by address (the mcp SDK's) send as Host.
        for address in GATEWAY_ADDRESSES:
            argv += ["--allowed-host", f"{address}:*"]
        # The catalog's prod environment gives MCP_ALLOWED_HOSTS (the public name) as the pod's env.
        env = {**_process_env(), **server.env}
    replica.child = process.start(replica.label, argv, log, env=env, cwd=REPO, port=replica.port)


def dns_records(fleet: Fleet) -> dict[str, list[str]]:
    records = {endpoints_host(s): list(REPLICA_ADDRESSES[s.name]) for s in fleet.servers}
    records[router_endpoints_host(fleet.settings)] = list(ROUTER_ADDRESSES)
    return records


@contextlib.contextmanager
def cluster_dns(records: Mapping[str, Sequence[str]], workdir: Path) -> Iterator[Path]:
    require_sandbox_tools()
    resolver = Records(records)
    quiet = DNSLogger(logf=lambda _: None)
    servers = [
        DNSServer(resolver, address=DNS_ADDRESS, port=53, tcp=tcp, logger=quiet) for tcp in (False, True)
    ]
    for server in servers:
        server.start_thread()
    resolv_conf = workdir / "resolv.conf"
    resolv_conf.write_text(f"nameserver {DNS_ADDRESS}\noptions timeout:1 attempts:2\n", encoding="utf-8")
    try:
        yield resolv_conf
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()


@contextlib.contextmanager
def running_stack(workdir: Path) -> Iterator[Stack]:
    """Render, start every process, wait until the gateways route to both routers; stop all on exit."""
    from mcpfleet.plan.run import load_inputs  # the Pulumi program's imports: only where a plan is read

    haproxy = shutil.which("haproxy")
    if haproxy is None:
        raise StackError("haproxy is not installed (apt-get install haproxy)")
    _, fleet = load_inputs(ENV, CATALOG, STACKS)
    missing = {s.name for s in fleet.servers} - set(REPLICA_ADDRESSES)
    if missing:
        raise StackError(f"no loopback addresses for {sorted(missing)}")
    config_dir = workdir / "config"
    config_dir.mkdir(parents=True)
    for name, text in render_gateway_config(fleet).items():
        (config_dir / name).write_bytes(text.encode("utf-8"))
    router_dir = workdir / "router"
    router_dir.mkdir()
    router_json = render_router_config(fleet).encode("utf-8")
    (router_dir / "router.json").write_bytes(router_json)
    keys = router_dir / "session-keys"
    keys.write_text(session_keys_text(new_session_keys()), encoding="ascii")
    keys.chmod(0o600)
    issuer = Issuer(fleet, workdir / "jwt")
    certificate = self_signed(
        workdir / "certs", [fleet.settings.domain.removeprefix("*."), "localhost"], GATEWAY_ADDRESSES
    )
    stack = Stack(fleet, workdir, issuer, certificate, config_dir, router_json)
    logs = workdir / "logs"
    with contextlib.ExitStack() as cleanup:
        resolv_conf = cleanup.enter_context(cluster_dns(dns_records(fleet), workdir))
        cleanup.callback(_stop_all, stack)
        for server in sorted(fleet.servers, key=lambda s: s.name):
            port = server.spec.transport.port
            stack.replicas[server.name] = [
                Replica(
                    server.name,
                    f"{server.name}-{i + 1}",
                    address,
                    port,
                    logs / f"calls-{server.name}-{i + 1}.jsonl",
                )
                for i, address in enumerate(REPLICA_ADDRESSES[server.name])
            ]
        replicas = [r for rs in stack.replicas.values() for r in rs]
        for replica in replicas:
            _start_replica(stack, replica)
        for replica in replicas:
            assert replica.child is not None
            process.wait_for_port(replica.child, replica.address, replica.port, START_SECONDS)
        for index, address in enumerate(ROUTER_ADDRESSES):
            router = RouterReplica(address, logs / f"router-{index + 1}.audit.jsonl")
            argv = [sys.executable, "-m", "mcpfleet.router", "--config", str(router_dir / "router.json")]
            argv += ["--jwt-key", str(issuer.public_key_file), "--session-keys", str(keys)]
            argv += [
                "--host",
                address,
                "--port",
                str(ROUTER_PORT),
                "--metrics-port",
                str(ROUTER_METRICS_PORT),
            ]
            router.child = process.start(
                f"router-{index + 1}",
                in_sandbox(resolv_conf, argv),
                logs / f"router-{index + 1}.log",
                env=_process_env(),
                cwd=REPO,
                output=router.audit,
            )
            stack.routers.append(router)
        counts = {name: len(addresses) for name, addresses in REPLICA_ADDRESSES.items()}
        for router in stack.routers:
            _wait(f"router {router.address}", lambda r=router: _router_ready(r, counts), [router.child])
        for index, address in enumerate(GATEWAY_ADDRESSES):
            gateway = GatewayReplica(address, logs / f"gateway-{index + 1}.log")
            env = {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME": f"mcp-gateway-{index}",
                ADDRESS_ENV: address,
                CONFIG_DIR_ENV: str(config_dir),
                CERT_DIR_ENV: str(certificate.parent),
                JWT_KEY_ENV: str(issuer.public_key_file),
            }
            argv = in_sandbox(resolv_conf, [haproxy, "-db", "-f", str(config_dir / CONFIG_KEY)])
            gateway.child = process.start(f"gateway-{index + 1}", argv, gateway.log, env=env)
            stack.gateways.append(gateway)
        for gateway in stack.gateways:
            _wait(
                f"gateway {gateway.address} to see both routers UP",
                lambda g=gateway: _routers_up(g) >= len(ROUTER_ADDRESSES),
                [gateway.child],
            )
        yield stack


def _stop_all(stack: Stack) -> None:
    for gateway in stack.gateways:
        if gateway.child is not None:
            process.stop(gateway.child)
    for router in stack.routers:
        if router.child is not None:
            process.stop(router.child)
    for replicas in stack.replicas.values():
        for replica in replicas:
            if replica.child is not None:
                sig = signal.SIGINT if replica.server == "everything" else signal.SIGTERM
                process.stop(replica.child, sig)
