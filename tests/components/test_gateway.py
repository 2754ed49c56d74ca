"""The gateway: its HAProxy configuration (checked and run by a real HAProxy 2.6), objects and component.

HAProxy decides on routes, tokens, rates and sizes only; every routed request goes to the MCP router,
byte for byte. Here a small recording server stands in for the router's replicas: what reached it (or
did not) is what each test asserts. The router's own decisions (method, tool, access, sessions) are
tested with the router (tests/router/).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import http.client
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import kubernetes_validate
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from components.gateway import TYPE_TOKEN, Gateway
from components.gateway.config import (
    CERT_DIR_ENV,
    CONFIG_DIR_ENV,
    FLEET_BACKEND,
    JWT_KEY_ENV,
    MAX_BODY_BYTES,
    RATE_LIMITS_FILE,
    ROUTER_BACKEND,
    ROUTES_FILE,
    Upstream,
    public_path,
    render_gateway_config,
)
from components.manifests import K8sObject
from components.manifests.gateway import (
    ADDRESS_ENV,
    CERT_DIR,
    CERT_FILE,
    CONFIG_HASH_ANNOTATION,
    CONFIG_KEY,
    CONFIG_PATH,
    HAPROXY_UID,
    IMAGE,
    KEY_FILE,
    METRICS_PORT,
    NLB_ANNOTATIONS,
    PLAIN_PORT,
    ROUTER_METRICS_PORT,
    ROUTER_PORT,
    TLS_PORT,
    GatewayConfig,
    config_hash,
    config_map,
    endpoints_service_name,
    gateway_objects,
    router_endpoints_host,
)
from components.manifests.labels import (
    GATEWAY_POD_LABELS,
    GATEWAY_SERVICE_ACCOUNT,
    PROMETHEUS_POD_LABELS,
    ROUTER_POD_LABELS,
)
from components.server import server_objects
from mcpfleet.fleet import Fleet
from mcpfleet.model import ENVIRONMENTS
from mcpfleet.plan.engine import run_program
from tests.components.edge import BETA_LIMITS, acm, edge_fleet, with_gateway
from tests.sandbox import cluster_dns, in_sandbox, run_in_sandbox

# HAProxy runs the configuration in the DNS sandbox: without root, in its private namespace.
pytestmark = pytest.mark.sandbox

KUBERNETES_VERSION = "1.33.0"
# Custom resources: the Kubernetes schemas do not know them.
CRD_GROUPS = {"cert-manager.io", "security.istio.io"}


def haproxy_cfg(fleet: Fleet) -> str:
    return render_gateway_config(fleet)[CONFIG_KEY]


def write_config(config: GatewayConfig, directory: Path) -> Path:
    """The configuration directory as the pod mounts it; returns haproxy.cfg's path."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in config.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory / CONFIG_KEY


def objects_of(fleet: Fleet) -> dict[str, K8sObject]:
    return gateway_objects(fleet, render_gateway_config(fleet), TEST_PUBLIC_KEY_TEXT)


def one(objects: dict[str, K8sObject], kind: str, name: str | None = None) -> K8sObject:
    (found,) = [o for o in objects.values() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return found


def sections(config: str) -> dict[str, list[str]]:
    """haproxy.cfg as {section header: its statements}, comments and blank lines dropped."""
    parsed: dict[str, list[str]] = {}
    current: list[str] = []
    for line in config.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            current.append(line.strip())
        else:
            assert line not in parsed, f"section {line!r} twice"
            current = parsed[line] = []
    return parsed


# The configuration


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_server_is_routed_to_the_one_router_pool(env: str) -> None:
    fleet = edge_fleet(env)
    config = render_gateway_config(fleet)
    parsed = sections(config[CONFIG_KEY])
    assert f"default_backend {ROUTER_BACKEND}" in parsed["frontend mcp"]
    # The one other backend: the same pool, for the fleet endpoint's legacy sessions.
    assert [line for line in parsed["frontend mcp"] if line.startswith("use_backend")] == [
        f"use_backend {FLEET_BACKEND} if fleet_route {{ req.hdr(mcp-session-id) -m found }}"
    ]
    backends = {header.split()[1] for header in parsed if header.startswith("backend ")}
    assert backends == {ROUTER_BACKEND, FLEET_BACKEND, "rate_sources", "rate_callers", "rate_servers"}
    router = parsed[f"backend {ROUTER_BACKEND}"]
    slots = fleet.settings.router.max_replicas
    template = (
        f"server-template router 1-{slots} {router_endpoints_host(fleet.settings)}:{ROUTER_PORT}"
        f" check port {ROUTER_METRICS_PORT} resolvers kube"
    )
    assert any(line.startswith(template) for line in router), router
    sessions = parsed[f"backend {FLEET_BACKEND}"]
    assert sessions[:2] == ["balance hdr(mcp-session-id)", "hash-type consistent"]
    assert sessions[2:] == router[1:], "the same replicas, checked alike"
    routes = dict(line.split(" ", 1) for line in config[ROUTES_FILE].splitlines() if not line.startswith("#"))
    assert routes == {s.name: public_path(s).removeprefix("/servers/") for s in fleet.servers}
    limits = [line for line in config[RATE_LIMITS_FILE].splitlines() if not line.startswith("#")]
    assert limits == [
        f"caller/beta {BETA_LIMITS.per_caller_per_minute}",
        f"server/beta {BETA_LIMITS.per_server_per_minute}",
    ]
    # The whole directory: haproxy.cfg and its two map files, nothing per server beyond a line.
    assert set(config) == {CONFIG_KEY, ROUTES_FILE, RATE_LIMITS_FILE}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_nothing_in_haproxy_reads_the_message_or_pins_a_session(env: str) -> None:
    text = haproxy_cfg(edge_fleet(env))
    statements = [line for lines in sections(text).values() for line in lines]
    for banned in ("req.body", "json_query(", "mcp-method", "mcp-name", "stick on", "stick store", "peers"):
        assert not [line for line in statements if banned in line.lower()], banned
    # Forwarding headers are set (replacing a client's), never appended; Host and the path pass unchanged.
    assert "option forwardfor" not in text and "unique-id-header" not in text
    assert not [
        line for line in statements if re.search(r"(set|add)-header host\b|set-path|replace-path", line, re.I)
    ]
    for header in ("X-Request-ID %[unique-id]", "X-Forwarded-For %[src]", "X-Forwarded-Proto https"):
        assert f"http-request set-header {header}" in statements
    assert "http-request del-header Forwarded" in statements


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rendering_is_byte_stable(env: str) -> None:
    fleet = edge_fleet(env)
    first = render_gateway_config(fleet)
    assert render_gateway_config(fleet) == first
    shuffled = dataclasses.replace(fleet, servers=tuple(reversed(fleet.servers)))
    assert render_gateway_config(shuffled) == first


def test_fixed_router_addresses_replace_cluster_dns_on_one_machine() -> None:
    with pytest.raises(TypeError, match="MCP router's addresses"):
        render_gateway_config(edge_fleet("local"), upstreams={"alpha": ["127.0.0.1:9100"]})  # type: ignore[arg-type]
    config = render_gateway_config(
        edge_fleet("local"), upstreams=["127.0.0.1:9100", Upstream("127.0.0.5:9100", metrics_port=9999)]
    )
    parsed = sections(config[CONFIG_KEY])
    assert parsed[f"backend {ROUTER_BACKEND}"][-2:] == [
        f"server router1 127.0.0.1:9100 check port {ROUTER_METRICS_PORT}",
        "server router2 127.0.0.5:9100 check port 9999",
    ]
    assert "resolvers kube" not in parsed
    assert not [line for line in parsed[f"backend {ROUTER_BACKEND}"] if "server-template" in line]


def test_tls_is_terminated_by_haproxy_unless_the_nlb_holds_an_acm_certificate() -> None:
    own = sections(haproxy_cfg(edge_fleet("prod")))["frontend mcp"]
    certificate = f'"${{{CERT_DIR_ENV}-{CERT_DIR}}}/{CERT_FILE}"'
    assert f'bind "${{{ADDRESS_ENV}-}}:{TLS_PORT}" ssl crt {certificate} alpn http/1.1' in own
    nlb = sections(haproxy_cfg(acm("prod")))
    assert f'bind "${{{ADDRESS_ENV}-}}:{PLAIN_PORT}"' in nlb["frontend mcp"]
    assert not [line for line in nlb["global"] if line.startswith("ssl-")]


def test_metrics_and_health_have_their_own_port() -> None:
    prometheus = sections(haproxy_cfg(edge_fleet("dev")))["frontend prometheus"]
    assert f'bind "${{{ADDRESS_ENV}-}}:{METRICS_PORT}"' in prometheus
    assert "http-request use-service prometheus-exporter if { path /metrics }" in prometheus
    assert "monitor-uri /healthz" in prometheus


def haproxy() -> str:
    """The haproxy binary; its absence fails the test: the configuration must be checked for real."""
    binary = shutil.which("haproxy")
    if binary is None:
        pytest.fail("haproxy is not installed: `apt-get install -y haproxy` (HAProxy 2.6 on Debian bookworm)")
    version = subprocess.run([binary, "-v"], capture_output=True, text=True, check=True).stdout
    assert re.match(r"HAProxy version 2\.6\.", version), f"the gateway runs HAProxy 2.6, this is: {version}"
    return binary


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway self-signed certificate, laid out like the pod's mount of the cert-manager Secret."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed: `apt-get install -y openssl`")
    directory = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
            *("-days", "1", "-subj", "/CN=mcp.test", "-keyout", str(directory / KEY_FILE)),
            *("-out", str(directory / CERT_FILE)),
        ],
        check=True,
        capture_output=True,
    )
    return directory


@cache
def signing_key() -> rsa.RSAPrivateKey:
    """The environment's identity provider, as far as these tests are concerned."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_key_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


TEST_PUBLIC_KEY_TEXT = "-----BEGIN PUBLIC KEY-----\n(a test key)\n-----END PUBLIC KEY-----\n"


def claims(fleet: Fleet, server: str, subject: str = "alice", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": fleet.settings.gateway.auth.issuer,
        "aud": fleet.audience(server),
        "sub": subject,
        "roles": "engineer",
        "iat": now,
        "exp": now + 300,
        **changes,
    }
    return {key: value for key, value in payload.items() if value is not DROP}


DROP = object()


def token(fleet: Fleet, server: str, subject: str = "alice", **changes: Any) -> str:
    return jwt.encode(claims(fleet, server, subject, **changes), signing_key(), algorithm="RS256")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], payload_json: str, key: rsa.RSAPrivateKey | None = None) -> str:
    """A token with the payload's exact JSON text (duplicate keys, odd literals), signed with key, or
    unsigned."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload_json.encode())}"
    if key is None:
        return signing_input + "."
    algorithm = jwt.get_algorithm_by_name("RS256")
    return f"{signing_input}.{b64url(algorithm.sign(signing_input.encode(), key))}"


def hmac_token(payload: dict[str, Any], secret: bytes) -> str:
    """HS256 with secret as the key (PyJWT refuses a PEM key as an HMAC secret; an attacker does not)."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{b64url(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def swap_payload(signed: str, payload: dict[str, Any]) -> str:
    header, _, signature = signed.split(".")
    return f"{header}.{b64url(json.dumps(payload).encode())}.{signature}"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jwt") / "issuer.pem"
    path.write_text(public_key_pem(signing_key()), encoding="utf-8")
    return path


def gateway_env(config_dir: Path, cert_dir: Path, key_file: Path, address: str = "") -> dict[str, str]:
    """What the pod's environment gives HAProxy: here the directories of the test's configuration and
    certificate, the issuer's key, and the pod's address."""
    return {
        "PATH": "/usr/sbin:/usr/bin:/bin",
        CONFIG_DIR_ENV: str(config_dir),
        CERT_DIR_ENV: str(cert_dir),
        JWT_KEY_ENV: str(key_file),
        ADDRESS_ENV: address,
    }


def check(
    config: GatewayConfig, fleet: Fleet, tmp_path: Path, cert_dir: Path, key_file: Path
) -> subprocess.CompletedProcess[str]:
    path = write_config(config, tmp_path / "config")
    records = {router_endpoints_host(fleet.settings): ["127.0.0.1"]}
    with cluster_dns(records, tmp_path) as (_, resolv_conf):
        # -dW: a warning fails the check too.
        return run_in_sandbox(
            resolv_conf,
            [haproxy(), "-dW", "-c", "-f", str(path)],
            gateway_env(path.parent, cert_dir, key_file),
        )


@pytest.mark.parametrize("env", [*ENVIRONMENTS, "prod-acm"])
def test_haproxy_accepts_the_configuration(env: str, tmp_path: Path, cert_dir: Path, key_file: Path) -> None:
    fleet = acm("prod") if env == "prod-acm" else edge_fleet(env)
    result = check(render_gateway_config(fleet), fleet, tmp_path, cert_dir, key_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout


def test_the_check_catches_a_broken_configuration(tmp_path: Path, cert_dir: Path, key_file: Path) -> None:
    fleet = edge_fleet("dev")
    config = render_gateway_config(fleet)
    broken = {**config, CONFIG_KEY: config[CONFIG_KEY].replace("balance leastconn", "balance leastconnn")}
    assert check(broken, fleet, tmp_path, cert_dir, key_file).returncode != 0
    missing_map = {name: text for name, text in config.items() if name != ROUTES_FILE}
    assert check(missing_map, fleet, tmp_path / "missing", cert_dir, key_file).returncode != 0


# The configuration, unmodified, served by a real HAProxy in front of two stand-ins for the router's
# replicas, which cluster DNS names: everything that decides routing, authentication and rates is the
# shipped text.

GATEWAY_ADDRESS = "127.0.0.102"
ROUTER_ADDRESSES = ("127.0.0.121", "127.0.0.122")
# Requests without a valid token one address may make a minute, low enough to reach.
PER_SOURCE_LIMIT = 12


@dataclasses.dataclass
class Seen:
    """One request as a router replica received it."""

    replica: str
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """HAProxy's health checks close their connections abruptly: nothing to report."""


class RouterStandIn(QuietServer):
    """Records every request and answers 200 with a JSON body naming itself."""

    def __init__(self, label: str, address: str, port: int, seen: list[Seen]) -> None:
        super().__init__((address, port), RouterHandler)
        self.label = label
        self.seen = seen
        self.lock = threading.Lock()


class RouterHandler(BaseHTTPRequestHandler):
    server: RouterStandIn
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.server.lock:
            self.server.seen.append(
                Seen(self.server.label, self.command, self.path, list(self.headers.items()), body)
            )
        answer = json.dumps({"replica": self.server.label}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HealthHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclasses.dataclass
class Running:
    fleet: Fleet
    port: int
    metrics_port: int
    log: Path
    seen: list[Seen]

    def seen_with(self, marker: str) -> list[Seen]:
        """What the router received carrying marker in its path or body."""
        return [s for s in list(self.seen) if marker in s.path or marker.encode() in s.body]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, key_file: Path, cert_dir: Path) -> Iterator[Running]:
    """dev's configuration of the test fleet, TLS at the NLB, a low limit for requests without a token."""
    fleet = with_gateway(acm("dev"), unauthenticated_per_source_per_minute=PER_SOURCE_LIMIT)
    workdir = tmp_path_factory.mktemp("gateway")
    path = write_config(render_gateway_config(fleet), workdir / "config")
    seen: list[Seen] = []
    servers: list[ThreadingHTTPServer] = []
    for index, address in enumerate(ROUTER_ADDRESSES):
        servers.append(RouterStandIn(f"router{index + 1}", address, ROUTER_PORT, seen))
        servers.append(QuietServer((address, ROUTER_METRICS_PORT), HealthHandler))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    records = {router_endpoints_host(fleet.settings): list(ROUTER_ADDRESSES)}
    log = workdir / "haproxy.log"
    with cluster_dns(records, workdir) as (_, resolv_conf), log.open("wb") as output:
        process = subprocess.Popen(
            in_sandbox(resolv_conf, [haproxy(), "-db", "-f", str(path)]),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=gateway_env(path.parent, cert_dir, key_file, GATEWAY_ADDRESS),
        )
        running = Running(fleet, PLAIN_PORT, METRICS_PORT, log, seen)
        try:
            wait_until_served(running, process)
            yield running
        finally:
            process.terminate()
            process.wait(timeout=10)
            for server in servers:
                server.shutdown()
                server.server_close()


def wait_until_served(running: Running, process: subprocess.Popen[bytes]) -> None:
    """Until DNS has filled the router pool and both replicas pass their checks."""
    deadline = time.monotonic() + 30
    answered: set[str] = set()
    while len(answered) < len(ROUTER_ADDRESSES) and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"haproxy exited: {running.log.read_text()}")
        try:
            status, _, answer = call(running, "POST", "/servers/alpha/mcp", token(running.fleet, "alpha"))
            if status == 200:
                answered.add(answer["replica"])
        except OSError:
            pass
        time.sleep(0.1)
    if len(answered) < len(ROUTER_ADDRESSES):
        pytest.fail(f"router replicas answering within 30 s: {sorted(answered)}\n{running.log.read_text()}")


def call(
    running: Running,
    method: str,
    path: str,
    bearer: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
    port: int | None = None,
    source: str = "127.0.0.1",
) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection(
        GATEWAY_ADDRESS, port or running.port, timeout=5, source_address=(source, 0)
    )
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if bearer is not None:
        all_headers["Authorization"] = f"Bearer {bearer}"
    try:
        connection.request(method, path, body=body if method == "POST" else None, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        answer = json.loads(data) if response.getheader("content-type") == "application/json" else data
        return response.status, {k.lower(): v for k, v in response.getheaders()}, answer
    finally:
        connection.close()


def raw_request(running: Running, request: bytes, complete: bool = True) -> bytes:
    """request's exact bytes to the gateway; the start of the answer. complete=False leaves the request
    unfinished (a body shorter than announced), as a sender still sending."""
    with socket.create_connection((GATEWAY_ADDRESS, running.port), timeout=5) as raw:
        raw.sendall(request)
        if complete:
            raw.shutdown(socket.SHUT_WR)
        return raw.recv(4096)


def test_requests_reach_the_router_unchanged_with_the_gateways_own_forwarding_headers(
    gateway: Running,
) -> None:
    marker = "unchanged-7f3a"
    bearer = token(gateway.fleet, "alpha", roles="support")
    # Bytes a strict parser refuses, sent as a client would: HAProxy must not read them, only forward them.
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping",'
        b'"params":{"name":"get-env","\\u006eame":"echo","note":"' + marker.encode() + b'"}}'
    )
    status, response_headers, answer = call(
        gateway,
        "POST",
        "/servers/alpha/mcp?probe=1",
        bearer,
        {
            "Host": "mcp.dev.example.com",
            "X-Request-ID": "client-chosen-id",
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "http",
            "Forwarded": "for=203.0.113.9;proto=http",
            "mcp-method": "ping",
            "mcp-name": "echo",
        },
        body,
        source="127.0.0.71",
    )
    assert status == 200, answer
    [seen] = gateway.seen_with(marker)
    assert seen.method == "POST" and seen.path == "/servers/alpha/mcp?probe=1"
    assert seen.body == body
    assert seen.all("host") == ["mcp.dev.example.com"]
    # The token travels on: the router checks it again and takes the caller's roles from it.
    assert seen.all("authorization") == [f"Bearer {bearer}"]
    # Replaced, never appended: one value each, the gateway's.
    [request_id] = seen.all("x-request-id")
    assert request_id != "client-chosen-id" and response_headers["x-request-id"] == request_id
    assert seen.all("x-forwarded-for") == ["127.0.0.71"]
    assert seen.all("x-forwarded-proto") == ["https"]
    assert seen.all("forwarded") == []
    # Hints a client controls pass through untouched: the router checks them against the body.
    assert seen.all("mcp-method") == ["ping"] and seen.all("mcp-name") == ["echo"]


def test_sse_servers_get_every_path_under_their_prefix(gateway: Running) -> None:
    bearer = token(gateway.fleet, "gamma", subject="sse")
    assert call(gateway, "GET", "/servers/gamma/sse?m=sse-stream-1", bearer)[0] == 200
    assert call(gateway, "POST", "/servers/gamma/message?session_id=abc&m=sse-post-1", bearer)[0] == 200
    assert [s.path for s in gateway.seen_with("sse-stream-1")] == ["/servers/gamma/sse?m=sse-stream-1"]
    assert [s.path for s in gateway.seen_with("sse-post-1")] == [
        "/servers/gamma/message?session_id=abc&m=sse-post-1"
    ]


def test_both_router_replicas_share_the_load(gateway: Running) -> None:
    bearer = token(gateway.fleet, "alpha", subject="load")
    replicas = {call(gateway, "POST", "/servers/alpha/mcp", bearer)[2]["replica"] for _ in range(20)}
    assert replicas == {"router1", "router2"}


def test_a_token_for_another_server_or_from_a_stranger_gets_401_and_reaches_nothing(gateway: Running) -> None:
    fleet = gateway.fleet
    issuer = fleet.settings.gateway.auth.issuer
    audience = fleet.audience("alpha")
    now = int(time.time())
    good = {"iss": issuer, "aud": audience, "sub": "x", "exp": now + 60}
    forged = {
        "expired": token(fleet, "alpha", exp=now - 5),
        "not yet valid": token(fleet, "alpha", nbf=now + 120),
        "another server's audience": token(fleet, "beta"),
        "another issuer": token(fleet, "alpha", iss="https://elsewhere.example.com/"),
        # Signed with the public key as an HMAC secret: the classic algorithm confusion.
        "HS256 with the public key": hmac_token(good, public_key_pem(signing_key()).encode()),
        "alg none": raw_token({"alg": "none", "typ": "JWT"}, json.dumps(good)),
        "tampered signature": token(fleet, "alpha")[:-4] + "AAAA",
        "payload swapped after signing": swap_payload(token(fleet, "alpha"), {**good, "roles": "admin"}),
        # A key the token names for itself is never used: only the configured one.
        "own embedded key": jwt.encode(
            good,
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}, "jku": "https://evil.example/jwks"},
        ),
        "not a JWT": "not-a-jwt",
    }
    for name, bearer in forged.items():
        marker = f"forged-{name.replace(' ', '-')}"
        status, headers, answer = call(
            gateway, "POST", f"/servers/alpha/mcp?m={marker}", bearer, source="127.0.0.61"
        )
        assert status == 401, name
        assert answer["error"]["code"] == -32001 and answer["jsonrpc"] == "2.0", name
        assert headers["www-authenticate"].startswith(
            'Bearer resource_metadata="https://mcp.dev.example.com/.well-known/oauth-protected-resource/servers/alpha/mcp"'
        )
        assert gateway.seen_with(marker) == [], name
    status, _, _ = call(gateway, "POST", "/servers/alpha/mcp?m=no-token-at-all", source="127.0.0.61")
    assert status == 401 and gateway.seen_with("no-token-at-all") == []


# Signed by the real issuer, with the right audience: claims of a type the router would refuse.
MISTYPED_CLAIMS: dict[str, dict[str, Any]] = {
    "exp as a string": {"exp": str(int(time.time()) + 300)},
    "exp as a boolean": {"exp": True},
    "exp as a float in a string": {"exp": f"{time.time() + 300:.1f}"},
    "exp missing": {"exp": DROP},
    "exp null": {"exp": None},
    "nbf as a string": {"nbf": str(int(time.time()) - 10)},
    "nbf as a boolean": {"nbf": False},
    "iat as a string": {"iat": str(int(time.time()))},
    "iat as a boolean": {"iat": True},
    "aud as a number": {"aud": 5},
    "aud as an object": {"aud": {"value": "https://mcp.dev.example.com/servers/alpha"}},
    "aud a list naming another server first": {"aud": ["https://mcp.dev.example.com/servers/beta"]},
    "roles as a number": {"roles": 7},
    "roles as a boolean": {"roles": True},
    "roles a list starting with a number": {"roles": [1, "engineer"]},
    "roles a list starting with a boolean": {"roles": [True]},
    "sub as a number": {"sub": 42},
    "sub missing": {"sub": DROP},
}
# And claim shapes the contract allows.
WELL_TYPED_CLAIMS: dict[str, dict[str, Any]] = {
    "roles a space-separated string": {"roles": "support engineer"},
    "roles a list of strings": {"roles": ["support", "engineer"]},
    "roles empty list": {"roles": []},
    "no roles": {"roles": DROP},
    "aud a list naming this server first": {"aud": ["https://mcp.dev.example.com/servers/alpha", "other"]},
    "no nbf, no iat": {"iat": DROP},
    "nbf and iat in the past, exp a float": {"nbf": int(time.time()) - 60, "exp": time.time() + 300.5},
}


@pytest.mark.parametrize("case", sorted(MISTYPED_CLAIMS))
def test_tokens_with_mistyped_claims_are_refused(gateway: Running, case: str) -> None:
    bearer = token(gateway.fleet, "alpha", subject="typed", **MISTYPED_CLAIMS[case])
    marker = f"mistyped-{case.replace(' ', '-')}"
    # An address per case: refusals count against the address's limit for requests without a token.
    source = f"127.0.1.{sorted(MISTYPED_CLAIMS).index(case) + 1}"
    status, _, answer = call(gateway, "POST", f"/servers/alpha/mcp?m={marker}", bearer, source=source)
    assert (status, answer["error"]["code"]) == (401, -32001)
    assert gateway.seen_with(marker) == []


@pytest.mark.parametrize("case", sorted(WELL_TYPED_CLAIMS))
def test_tokens_with_well_typed_claims_pass(gateway: Running, case: str) -> None:
    bearer = token(gateway.fleet, "alpha", subject="typed-ok", **WELL_TYPED_CLAIMS[case])
    marker = f"well-typed-{case.replace(' ', '-')}"
    assert call(gateway, "POST", f"/servers/alpha/mcp?m={marker}", bearer)[0] == 200
    assert len(gateway.seen_with(marker)) == 1


def test_duplicate_claims_are_read_as_haproxy_reads_them_and_left_to_the_router(gateway: Running) -> None:
    """json_query takes the first of duplicate keys: a token whose first `exp` is a string is refused
    here; one whose first `exp` is a number passes to the router, which refuses duplicate keys itself."""
    fleet = gateway.fleet
    exp = int(time.time()) + 300
    head = json.dumps(
        {"iss": fleet.settings.gateway.auth.issuer, "aud": fleet.audience("alpha"), "sub": "dup"}
    )
    header = {"alg": "RS256", "typ": "JWT"}
    first_string = raw_token(header, f'{head[:-1]},"exp":"{exp}","exp":{exp}}}', signing_key())
    first_number = raw_token(header, f'{head[:-1]},"exp":{exp},"exp":"{exp}"}}', signing_key())
    assert call(gateway, "POST", "/servers/alpha/mcp?m=dup-1", first_string, source="127.0.0.62")[0] == 401
    assert gateway.seen_with("dup-1") == []
    assert call(gateway, "POST", "/servers/alpha/mcp?m=dup-2", first_number, source="127.0.0.62")[0] == 200
    assert len(gateway.seen_with("dup-2")) == 1


def test_protected_resource_metadata_names_the_audience_and_the_issuer(gateway: Running) -> None:
    status, _, answer = call(
        gateway, "GET", "/.well-known/oauth-protected-resource/servers/alpha/mcp", source="127.0.0.64"
    )
    assert status == 200
    assert answer["resource"] == gateway.fleet.audience("alpha")
    assert answer["authorization_servers"] == [gateway.fleet.settings.gateway.auth.issuer]


# The fleet endpoint, /mcp: the router serves it; HAProxy routes it with a token audience of its own.


def fleet_token(fleet: Fleet, subject: str = "fleet-caller", **changes: Any) -> str:
    return token(fleet, "alpha", subject, **{"aud": fleet.endpoint_audience, **changes})


def test_the_fleet_endpoint_reaches_the_router_unchanged_with_its_own_audience(gateway: Running) -> None:
    fleet = gateway.fleet
    assert fleet.endpoint_audience == "https://mcp.dev.example.com/mcp"
    body = b'{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":"fleet-body-1"}}'
    bearer = fleet_token(fleet)
    status, headers, answer = call(
        gateway,
        "POST",
        "/mcp?m=fleet-1",
        bearer,
        {"Host": "mcp.dev.example.com", "X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9"},
        body,
        source="127.0.0.72",
    )
    assert status == 200, answer
    [seen] = gateway.seen_with("fleet-1")
    assert (seen.method, seen.path, seen.body) == ("POST", "/mcp?m=fleet-1", body)
    assert seen.all("authorization") == [f"Bearer {bearer}"] and seen.all("host") == ["mcp.dev.example.com"]
    assert seen.all("x-forwarded-for") == ["127.0.0.72"] and seen.all("forwarded") == []
    assert seen.all("x-request-id") == [headers["x-request-id"]]
    # A list of audiences whose first is the fleet's passes, as for servers.
    listed = fleet_token(fleet, aud=[fleet.endpoint_audience, fleet.audience("alpha")])
    assert call(gateway, "POST", "/mcp?m=fleet-2", listed)[0] == 200 and gateway.seen_with("fleet-2")
    # GET (the legacy notification stream) and DELETE (ending a session) reach it too.
    assert call(gateway, "GET", "/mcp?m=fleet-3", bearer)[0] == 200
    assert call(gateway, "DELETE", "/mcp?m=fleet-4", bearer)[0] == 200
    assert [s.method for s in gateway.seen_with("fleet-3") + gateway.seen_with("fleet-4")] == [
        "GET",
        "DELETE",
    ]


def test_server_tokens_do_not_open_the_fleet_endpoint_nor_its_token_a_server(gateway: Running) -> None:
    fleet = gateway.fleet
    issuer = fleet.settings.gateway.auth.issuer
    now = int(time.time())
    good = {"iss": issuer, "aud": fleet.endpoint_audience, "sub": "x", "exp": now + 60}
    refused_at_fleet = {
        "a server's token": token(fleet, "alpha"),
        "a list naming a server first": fleet_token(
            fleet, aud=[fleet.audience("alpha"), fleet.endpoint_audience]
        ),
        "the audience with a trailing slash": fleet_token(fleet, aud=fleet.endpoint_audience + "/"),
        "the audience prefix alone": fleet_token(fleet, aud="https://mcp.dev.example.com/servers/"),
        "expired": fleet_token(fleet, exp=now - 5),
        "another issuer": fleet_token(fleet, iss="https://elsewhere.example.com/"),
        "exp as a string": fleet_token(fleet, exp=str(now + 300)),
        "sub as a number": fleet_token(fleet, sub=42),
        "HS256 with the public key": hmac_token(good, public_key_pem(signing_key()).encode()),
        "alg none": raw_token({"alg": "none", "typ": "JWT"}, json.dumps(good)),
        "signed by another key": jwt.encode(
            good, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256"
        ),
    }
    for name, bearer in refused_at_fleet.items():
        marker = f"fleet-forged-{name.replace(' ', '-')}"
        status, headers, answer = call(gateway, "POST", f"/mcp?m={marker}", bearer, source="127.0.0.73")
        assert (status, answer["error"]["code"]) == (401, -32001), name
        assert headers["www-authenticate"] == (
            'Bearer resource_metadata="https://mcp.dev.example.com/.well-known/oauth-protected-resource/mcp"'
        )
        assert gateway.seen_with(marker) == [], name
    # The fleet's token opens no server's route (from another address: refusals count per address).
    for path in ("/servers/alpha/mcp", "/servers/beta/mcp", "/servers/gamma/sse"):
        marker = f"fleet-token-at-{path.split('/')[2]}"
        status, _, _ = call(gateway, "POST", f"{path}?m={marker}", fleet_token(fleet), source="127.0.0.75")
        assert status == 401 and gateway.seen_with(marker) == [], path
    status, _, _ = call(gateway, "POST", "/mcp?m=fleet-no-token", source="127.0.0.75")
    assert status == 401 and gateway.seen_with("fleet-no-token") == []


def test_the_fleet_endpoint_has_its_protected_resource_metadata(gateway: Running) -> None:
    status, _, answer = call(gateway, "GET", "/.well-known/oauth-protected-resource/mcp", source="127.0.0.74")
    assert status == 200
    assert answer == {
        "resource": gateway.fleet.endpoint_audience,
        "authorization_servers": [gateway.fleet.settings.gateway.auth.issuer],
        "bearer_methods_supported": ["header"],
    }
    for path in ("/.well-known/oauth-protected-resource/mcp/", "/.well-known/oauth-protected-resource/mcpx"):
        assert call(gateway, "GET", path, source="127.0.0.74")[0] == 404, path


def test_a_fleet_session_keeps_to_one_router_replica(gateway: Running) -> None:
    bearers = {
        "/mcp": fleet_token(gateway.fleet, subject="fleet-sessions"),
        "/servers/alpha/mcp": token(gateway.fleet, "alpha", subject="fleet-sessions"),
    }

    def replica(path: str, session: str | None) -> str:
        headers = {"Mcp-Session-Id": session} if session else {}
        status, _, answer = call(gateway, "POST", path, bearers[path], headers)
        assert status == 200, answer
        return str(answer["replica"])

    sessions = [f"mf1.session-{index}" for index in range(24)]
    first = {session: replica("/mcp", session) for session in sessions}
    # Every later request of a session lands where its first did, in any order of sessions.
    for _ in range(3):
        for session in reversed(sessions):
            assert replica("/mcp", session) == first[session], session
    # The sessions are spread over both replicas, and requests without one still share the load.
    assert set(first.values()) == {"router1", "router2"}
    assert {replica("/mcp", None) for _ in range(10)} == {"router1", "router2"}
    # Per-server routes are not hashed: their sessions hold the pod in the router's sealed id.
    assert {replica("/servers/alpha/mcp", sessions[0]) for _ in range(10)} == {"router1", "router2"}


def test_the_fleet_endpoint_is_rate_limited_per_caller_apart_from_the_servers(gateway: Running) -> None:
    fleet = gateway.fleet
    limit = fleet.settings.gateway.rate_limits.per_caller_per_minute
    bearer = fleet_token(fleet, subject="fleet-heavy")
    statuses = [call(gateway, "POST", "/mcp", bearer)[0] for _ in range(limit)]
    assert statuses == [200] * limit
    status, headers, answer = call(gateway, "POST", "/mcp?m=fleet-over", bearer)
    assert (status, headers["retry-after"], answer["error"]["code"]) == (429, "60", -32029)
    assert answer["error"]["message"] == "rate limit reached for this caller"
    assert gateway.seen_with("fleet-over") == []
    # The same caller's own counter at a server is apart, and so is another caller's at /mcp.
    alpha = token(fleet, "alpha", subject="fleet-heavy")
    assert call(gateway, "POST", "/servers/alpha/mcp?m=fleet-heavy-alpha", alpha)[0] == 200
    assert call(gateway, "POST", "/mcp?m=fleet-light", fleet_token(fleet, subject="fleet-light"))[0] == 200
    # /mcp spends no server's budget: beta (9 a minute in all) still serves its callers.
    assert call(gateway, "POST", "/servers/beta/mcp", token(fleet, "beta", subject="after-fleet"))[0] == 200


def test_unknown_paths_and_unbounded_or_large_bodies_are_refused_before_the_router(gateway: Running) -> None:
    bearer = token(gateway.fleet, "alpha", subject="paths")
    for path in (
        "/servers/nope/mcp?m=unknown-1",
        # The fleet endpoint is /mcp exactly (tests/components/test_gateway_fleet.py): nothing under it.
        "/mcp/?m=unknown-2",
        "/mcp/tools?m=unknown-9",
        "/mcpx?m=unknown-10",
        "/MCP?m=unknown-11",
        "/servers/alpha/mcp/more?m=unknown-3",
        "/servers/alpha/sse?m=unknown-4",
        "/servers/alpha?m=unknown-5",
        "/servers/gamma?m=unknown-6",
        "/servers/%61lpha/mcp?m=unknown-7",
        "/servers/alpha/%6dcp?m=unknown-8",
    ):
        assert call(gateway, "POST", path, bearer, source="127.0.0.63")[0] == 404, path
    assert (
        call(gateway, "GET", "/.well-known/oauth-protected-resource/servers/alpha/sse", source="127.0.0.63")[
            0
        ]
        == 404
    )
    assert [s.path for s in gateway.seen if "unknown-" in s.path] == []
    chunked = raw_request(
        gateway,
        b"POST /servers/alpha/mcp?m=chunked-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + bearer.encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    assert chunked.startswith(b"HTTP/1.1 411")
    large = raw_request(
        gateway,
        b"POST /servers/alpha/mcp?m=large-1 HTTP/1.1\r\nHost: x\r\n"
        + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        + b"x" * 65536,
        complete=False,
    )
    assert large.startswith(b"HTTP/1.1 413")
    # Both framings at once (a smuggling attempt): refused, never forwarded.
    smuggled = raw_request(
        gateway,
        b"POST /servers/alpha/mcp?m=smuggle-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + bearer.encode()
        + b"\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    assert smuggled.split(b" ", 2)[1] in (b"400", b"411")
    assert (
        gateway.seen_with("chunked-1") == gateway.seen_with("large-1") == gateway.seen_with("smuggle-1") == []
    )


def test_requests_without_a_valid_token_are_rate_limited_per_address(gateway: Running) -> None:
    source = "127.0.0.65"
    statuses = [
        call(gateway, "POST", "/servers/alpha/mcp?m=anonymous", source=source)[0]
        for _ in range(PER_SOURCE_LIMIT)
    ]
    assert statuses == [401] * PER_SOURCE_LIMIT
    status, headers, answer = call(gateway, "POST", "/servers/alpha/mcp", source=source)
    assert status == 429 and headers["retry-after"] == "60"
    assert answer["error"]["code"] == -32029 and answer["jsonrpc"] == "2.0"
    # Unknown paths and metadata lookups from there are refused too, before they earn a 404 or a 200.
    assert call(gateway, "GET", "/servers/nope/mcp", source=source)[0] == 429
    # A caller with a valid token from the same address is not held back by it; another address is not.
    bearer = token(gateway.fleet, "alpha", subject="behind-the-same-nat")
    assert call(gateway, "POST", "/servers/alpha/mcp?m=same-nat", bearer, source=source)[0] == 200
    assert call(gateway, "POST", "/servers/alpha/mcp", source="127.0.0.66")[0] == 401


def test_callers_and_servers_over_their_rate_get_429(gateway: Running) -> None:
    fleet = gateway.fleet
    statuses = [
        call(gateway, "POST", "/servers/beta/mcp", token(fleet, "beta", subject="frank"))[0]
        for _ in range(BETA_LIMITS.per_caller_per_minute + 2)
    ]
    limit = BETA_LIMITS.per_caller_per_minute
    assert statuses[:limit] == [200] * limit and statuses[-1] == 429
    status, headers, answer = call(
        gateway, "POST", "/servers/beta/mcp", token(fleet, "beta", subject="frank")
    )
    assert status == 429 and headers["retry-after"] == "60" and answer["error"]["code"] == -32029
    # Others still pass until the server's own budget is spent.
    others = [
        call(gateway, "POST", "/servers/beta/mcp", token(fleet, "beta", subject=f"g{i}"))[0]
        for i in range(BETA_LIMITS.per_server_per_minute)
    ]
    assert others[-1] == 429


def test_access_log_is_one_json_object_per_request_and_never_a_token(gateway: Running) -> None:
    bearer = token(gateway.fleet, "alpha", subject="logged-caller")
    status, headers, _ = call(gateway, "POST", "/servers/alpha/mcp?m=logged", bearer)
    assert status == 200
    deadline = time.monotonic() + 5
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not entries:
        text = gateway.log.read_text()
        entries = [
            e
            for e in (json.loads(line) for line in text.splitlines() if line.startswith("{"))
            if e["caller"] == "logged-caller"
        ]
        time.sleep(0.1)
    [entry] = entries
    assert entry["status"] == 200 and entry["server"] == "alpha" and entry["router"].startswith("router")
    assert entry["request_id"] == headers["x-request-id"]
    # The MCP method and the tool are the router's to log: HAProxy never read them.
    assert "rpc_method" not in entry and "tool" not in entry
    assert bearer not in text and bearer.split(".")[2] not in text
    # At the fleet endpoint the server is in the body, which the router reads and logs: the path says /mcp.
    fleet_bearer = fleet_token(gateway.fleet, subject="logged-fleet-caller")
    assert call(gateway, "POST", "/mcp?m=logged", fleet_bearer)[0] == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "logged-fleet-caller" not in gateway.log.read_text():
        time.sleep(0.1)
    [fleet_entry] = [
        e
        for e in (json.loads(line) for line in gateway.log.read_text().splitlines() if line.startswith("{"))
        if e["caller"] == "logged-fleet-caller"
    ]
    # "-": HAProxy's word for a value it has not got, as for a request without a session.
    assert (fleet_entry["status"], fleet_entry["path"], fleet_entry["server"]) == (200, "/mcp", "-")
    assert fleet_bearer not in gateway.log.read_text()


def test_metrics_and_health_answer_on_the_metrics_port(gateway: Running) -> None:
    status, _, body = call(gateway, "GET", "/metrics", port=gateway.metrics_port)
    assert status == 200 and f'proxy="{ROUTER_BACKEND}"'.encode() in body
    assert call(gateway, "GET", "/healthz", port=gateway.metrics_port)[0] == 200
    assert call(gateway, "GET", "/metrics", source="127.0.0.67")[0] == 404


# The Kubernetes objects


def pod_of(objects: dict[str, K8sObject]) -> K8sObject:
    pod: K8sObject = one(objects, "Deployment")["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_gateway_pod_is_hardened_like_the_servers(env: str) -> None:
    objects = objects_of(edge_fleet(env))
    pod = pod_of(objects)
    [container] = pod["containers"]
    assert container["image"] == IMAGE and re.fullmatch(
        r"docker\.io/library/haproxy:2\.6\.\d+@sha256:[0-9a-f]{64}", IMAGE
    )
    assert pod["serviceAccountName"] == GATEWAY_SERVICE_ACCOUNT
    assert pod["automountServiceAccountToken"] is False
    assert one(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsUser"] == HAPROXY_UID > 0
    assert all(port["containerPort"] > 1024 for port in container["ports"])
    assert container["resources"]["requests"] and container["resources"]["limits"]
    for probe in (container["livenessProbe"], container["readinessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["args"][-1] == CONFIG_PATH
    kinds = {next(k for k in volume if k != "name") for volume in pod["volumes"]}
    assert kinds <= {"configMap", "emptyDir", "secret"}
    namespace = one(objects, "Namespace")["metadata"]
    assert namespace["name"] == edge_fleet(env).settings.gateway_namespace
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace["labels"]["istio.io/dataplane-mode"] == "ambient"


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_run_a_highly_available_gateway(env: str) -> None:
    fleet = edge_fleet(env)
    objects = objects_of(fleet)
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2
    assert one(objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    zone, host = pod_of(objects)["topologySpreadConstraints"]
    assert zone["topologyKey"] == "topology.kubernetes.io/zone"
    assert zone["whenUnsatisfiable"] == (
        "DoNotSchedule" if fleet.settings.strictness == "strict" else "ScheduleAnyway"
    )
    assert host["topologyKey"] == "kubernetes.io/hostname"


@pytest.mark.parametrize("env", ["local", "dev"])
def test_a_single_replica_gets_no_disruption_budget(env: str) -> None:
    assert not [o for o in objects_of(edge_fleet(env)).values() if o["kind"] == "PodDisruptionBudget"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_load_balancer_is_an_nlb_on_eks_only_and_metrics_stay_inside(env: str) -> None:
    fleet = edge_fleet(env)
    objects = objects_of(fleet)
    public = one(objects, "Service", "mcp-gateway")
    port = {"name": "https", "port": 443, "targetPort": "mcp", "protocol": "TCP"}
    node_port = fleet.settings.gateway.node_port
    if node_port is None:
        assert public["spec"]["type"] == "LoadBalancer"
        assert public["spec"]["ports"] == [port]
    else:
        # kind: nothing serves LoadBalancer Services; the node's port is mapped to the host instead.
        assert fleet.settings.cluster.provider == "existing"
        assert public["spec"]["type"] == "NodePort"
        assert public["spec"]["ports"] == [{**port, "nodePort": node_port}]
    assert public["spec"]["externalTrafficPolicy"] == "Local"
    annotations = public["metadata"].get("annotations", {})
    if fleet.settings.cluster.provider == "eks":
        assert annotations == NLB_ANNOTATIONS
        # HAProxy counts requests without a token by client address: the NLB must pass it on.
        attributes = annotations["service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"]
        assert "preserve_client_ip.enabled=true" in attributes.split(",")
    else:
        assert annotations == {}
    metrics = one(objects, "Service", "mcp-gateway-metrics")
    assert metrics["spec"]["type"] == "ClusterIP"
    assert [p["port"] for p in metrics["spec"]["ports"]] == [METRICS_PORT]


def test_acm_moves_tls_to_the_nlb() -> None:
    objects = objects_of(acm("prod"))
    annotations = one(objects, "Service", "mcp-gateway")["metadata"]["annotations"]
    prefix = "service.beta.kubernetes.io/aws-load-balancer-"
    assert annotations[f"{prefix}ssl-cert"] == acm("prod").settings.gateway.acm_certificate_arn
    assert annotations[f"{prefix}ssl-ports"] == "443"
    assert not [o for o in objects.values() if o["kind"] == "Certificate"]
    pod = pod_of(objects)
    assert pod["containers"][0]["ports"][0]["containerPort"] == PLAIN_PORT
    assert "certs" not in {v["name"] for v in pod["volumes"]}


def test_cert_manager_certificate_for_the_domain_is_mounted_as_haproxy_loads_it() -> None:
    fleet = edge_fleet("prod")
    objects = objects_of(fleet)
    certificate = one(objects, "Certificate")
    assert certificate["apiVersion"] == "cert-manager.io/v1"
    assert certificate["spec"]["dnsNames"] == [fleet.settings.domain]
    assert certificate["spec"]["issuerRef"] == {
        "name": fleet.settings.gateway.cluster_issuer,
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert not [o for o in objects.values() if o["kind"] == "ClusterIssuer"]
    pod = pod_of(objects)
    [certs] = [v for v in pod["volumes"] if v["name"] == "certs"]
    assert certs["secret"]["secretName"] == certificate["spec"]["secretName"]
    assert certs["secret"]["items"] == [
        {"key": "tls.crt", "path": CERT_FILE},
        {"key": "tls.key", "path": KEY_FILE},
    ]
    assert {"name": "certs", "mountPath": CERT_DIR, "readOnly": True} in pod["containers"][0]["volumeMounts"]


def test_local_issues_its_certificate_from_a_self_signed_issuer() -> None:
    objects = objects_of(edge_fleet("local"))
    issuer = one(objects, "ClusterIssuer")
    assert issuer["spec"] == {"selfSigned": {}} and "namespace" not in issuer["metadata"]
    assert one(objects, "Certificate")["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]


def test_a_config_change_rolls_the_pods() -> None:
    fleet = edge_fleet("dev")
    annotation = one(objects_of(fleet), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    config = render_gateway_config(fleet)
    assert annotation[CONFIG_HASH_ANNOTATION] == config_hash(config)
    objects = objects_of(fleet)
    assert one(objects, "ConfigMap", "mcp-gateway-config")["data"] == config
    [volume] = [v for v in pod_of(objects)["volumes"] if v["name"] == "config"]
    assert volume["configMap"]["name"] == "mcp-gateway-config"
    # A change to a map file alone rolls them too.
    assert config_hash({**config, ROUTES_FILE: config[ROUTES_FILE] + "#\n"}) != config_hash(config)
    smaller = dataclasses.replace(fleet, servers=fleet.servers[1:])
    changed = one(objects_of(smaller), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert changed[CONFIG_HASH_ANNOTATION] != annotation[CONFIG_HASH_ANNOTATION]


def test_network_policy_opens_the_edge_port_metrics_to_prometheus_and_egress_to_the_router_only() -> None:
    fleet = edge_fleet("prod")
    policy = one(objects_of(fleet), "NetworkPolicy", "mcp-gateway")["spec"]
    assert policy["podSelector"]["matchLabels"].items() >= GATEWAY_POD_LABELS.items()
    edge, metrics, probes = policy["ingress"]
    assert edge == {"ports": [{"protocol": "TCP", "port": TLS_PORT}]}
    [prometheus] = metrics["from"]
    assert prometheus["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": fleet.settings.monitoring_namespace
    }
    assert prometheus["podSelector"]["matchLabels"] == PROMETHEUS_POD_LABELS
    assert {p["port"] for p in metrics["ports"]} == {METRICS_PORT, 15008}
    assert {p["port"] for p in probes["ports"]} == {METRICS_PORT}
    dns, router = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    # No server namespace: HAProxy reaches the router's pods, in its own namespace, and nothing else.
    assert router["to"] == [{"podSelector": {"matchLabels": ROUTER_POD_LABELS}}]
    assert {p["port"] for p in router["ports"]} == {ROUTER_PORT, ROUTER_METRICS_PORT, 15008}


def test_every_server_gets_a_headless_endpoints_service_for_the_router() -> None:
    fleet = edge_fleet("staging")
    for server in fleet.servers:
        objects = server_objects(server, fleet.settings)
        service = one(objects, "Service", endpoints_service_name(server))
        assert service["metadata"]["namespace"] == server.namespace
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["selector"] == {
            "app.kubernetes.io/name": server.name,
            "app.kubernetes.io/instance": server.name,
        }


def test_clashing_names_are_refused() -> None:
    fleet = edge_fleet("local")
    server = fleet.servers[0]
    clash = dataclasses.replace(
        fleet, settings=fleet.settings.model_copy(update={"gateway_namespace": server.namespace})
    )
    with pytest.raises(ValueError, match="also a server namespace"):
        objects_of(clash)
    twin = dataclasses.replace(
        server, spec=server.spec.model_copy(update={"name": endpoints_service_name(server)})
    )
    with pytest.raises(ValueError, match="endpoints"):
        objects_of(dataclasses.replace(fleet, servers=(*fleet.servers, twin)))


def test_a_configuration_too_large_for_a_config_map_is_refused() -> None:
    with pytest.raises(ValueError, match="ConfigMap"):
        config_map(edge_fleet("dev").settings, "mcp-gateway-config", {CONFIG_KEY: "#" * (1024 * 1024 + 1)})


@pytest.mark.parametrize("env", [*ENVIRONMENTS, "prod-acm"])
def test_objects_are_valid_kubernetes(env: str) -> None:
    fleet = acm("prod") if env == "prod-acm" else edge_fleet(env)
    built = [o for o in objects_of(fleet).values() if o["apiVersion"].split("/")[0] not in CRD_GROUPS]
    assert {o["kind"] for o in built} >= {"Namespace", "Deployment", "Service", "NetworkPolicy", "ConfigMap"}
    for obj in built:
        # Raises ValidationError naming the field when an object is not valid Kubernetes.
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


# The component, under the recording mock engine


def test_gateway_component_registers_its_objects_under_itself() -> None:
    fleet = edge_fleet("prod")
    built: dict[str, str] = {}

    def program() -> None:
        built.update(Gateway("gateway", fleet, TEST_PUBLIC_KEY_TEXT).config)

    registrations = run_program(program, project="mcpfleet", stack="prod", config={})
    [component] = [r for r in registrations if r.type == TYPE_TOKEN]
    children = [r for r in registrations if r.parent == component.urn]
    assert sorted(r.name for r in children) == sorted(objects_of(fleet))
    assert built == render_gateway_config(fleet)
    deployment = next(r.inputs for r in children if r.inputs.get("kind") == "Deployment")
    annotation = deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    assert annotation == config_hash(built)
    assert type(deployment["spec"]["replicas"]) is int
    types = {r.inputs["kind"]: r.type for r in children}
    assert types["Certificate"] == "kubernetes:cert-manager.io/v1:Certificate"
    assert types["PeerAuthentication"] == "kubernetes:security.istio.io/v1:PeerAuthentication"


@pytest.mark.parametrize("fleet", [edge_fleet("prod"), acm("prod")], ids=["cert-manager", "acm"])
def test_only_the_serving_port_takes_plaintext_in_the_strict_mesh(fleet: Fleet) -> None:
    policy = one(objects_of(fleet), "PeerAuthentication")
    port = TLS_PORT if fleet.settings.gateway.tls != "acm" else PLAIN_PORT
    assert policy["spec"]["mtls"] == {"mode": "STRICT"}
    assert policy["spec"]["portLevelMtls"] == {str(port): {"mode": "PERMISSIVE"}}
    assert policy["spec"]["selector"]["matchLabels"].items() >= GATEWAY_POD_LABELS.items()
