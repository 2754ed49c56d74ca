"""The gateway: its HAProxy configuration (checked and run by a real HAProxy 2.6), objects and component."""

from __future__ import annotations

import dataclasses
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
    JWT_KEY_ENV,
    MAX_BODY_BYTES,
    RATE_LIMITS_FILE,
    ROUTES_FILE,
    access_patterns,
    backend_name,
    public_path,
    render_gateway_config,
)
from components.manifests import K8sObject
from components.manifests.gateway import (
    ACCESS_FILE,
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
    TLS_PORT,
    GatewayConfig,
    config_hash,
    config_map,
    endpoints_host,
    endpoints_service_name,
    gateway_objects,
    peer_names,
    peer_service_host,
)
from components.manifests.labels import GATEWAY_POD_LABELS, GATEWAY_SERVICE_ACCOUNT, PROMETHEUS_POD_LABELS
from components.server import server_objects
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.catalog.models import AccessRule
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.model import ENVIRONMENTS, RateLimits
from mcpfleet.plan.engine import run_program
from mcpfleet.stacks.loader import load_stack_config
from tests.sandbox import cluster_dns, in_sandbox, run_in_sandbox

REPO = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.33.0"
ACM_ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
# Custom resources: the Kubernetes schemas do not know them.
CRD_GROUPS = {"cert-manager.io", "security.istio.io"}


@cache
def fleet_for(env: str) -> Fleet:
    _, settings = load_stack_config(REPO / "stacks", env)
    return resolve_fleet(load_catalog(REPO / "catalog"), env, settings, f"stacks/Pulumi.{env}.yaml")  # type: ignore[arg-type]


def with_gateway(fleet: Fleet, **changes: Any) -> Fleet:
    settings = fleet.settings
    gateway = settings.gateway.model_copy(update=changes)
    return dataclasses.replace(fleet, settings=settings.model_copy(update={"gateway": gateway}))


def acm(env: str) -> Fleet:
    """env, with TLS ending at the NLB (no stack file ships it; staging and prod are meant to allow it)."""
    return with_gateway(fleet_for(env), tls="acm", acm_certificate_arn=ACM_ARN, cluster_issuer=None)


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
        # `.if`/`.else`/`.endif`: conditional blocks inside the section.
        if line[0].isspace() or line.startswith("."):
            current.append(line.strip())
        else:
            assert line not in parsed, f"section {line!r} twice"
            current = parsed[line] = []
    return parsed


# The configuration


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_server_gets_a_route_and_a_backend(env: str) -> None:
    fleet = fleet_for(env)
    config = render_gateway_config(fleet)
    parsed = sections(config[CONFIG_KEY])
    assert "use_backend server_%[var(txn.server)]" in parsed["frontend mcp"]
    backends = {header.split()[1] for header in parsed if header.startswith("backend ")}
    assert backends == {backend_name(s) for s in fleet.servers} | {"no_route", "rate_callers", "rate_servers"}
    routes = dict(line.split(" ", 1) for line in config[ROUTES_FILE].splitlines() if not line.startswith("#"))
    assert routes == {s.name: public_path(s).removeprefix("/servers/") for s in fleet.servers}
    for server in fleet.servers:
        transport = server.spec.transport
        backend = parsed[f"backend {backend_name(server)}"]
        template = f"server-template pod 1-{server.max_replicas} {endpoints_host(server)}:{transport.port}"
        assert any(line.startswith(template) for line in backend), server.name
        if transport.type == "sse":
            assert f"http-request replace-path ^/servers/{server.name}/sse$ {transport.path}" in backend
        else:
            assert f"http-request set-path {transport.path}" in backend
        sticky = "stick store-response res.hdr(mcp-session-id)" in backend
        assert sticky == (not server.spec.stateless and transport.type != "sse"), server.name
        assert ("stick on req.hdr(mcp-session-id)" in backend) == sticky
        # Shared between gateway replicas by the pod's address, which all replicas agree on.
        assert any("srvkey addr peers gateway" in line for line in backend) == sticky
    access = [line for line in config[ACCESS_FILE].splitlines() if not line.startswith("#")]
    assert access == [p for s in sorted(fleet.servers, key=lambda s: s.name) for p in access_patterns(s)]
    limits = [line for line in config[RATE_LIMITS_FILE].splitlines() if not line.startswith("#")]
    assert len(limits) == 2 * len([s for s in fleet.servers if s.spec.rate_limits is not None])
    # Host reaches the servers as the client sent it.
    assert not [
        line for lines in parsed.values() for line in lines if re.search(r"set-header host\b", line, re.I)
    ]


def test_access_patterns_admit_whole_roles_for_the_named_tools_only() -> None:
    fleet = fleet_for("prod")
    [pattern] = access_patterns(
        dataclasses.replace(
            fleet.servers[0],
            spec=fleet.servers[0].spec.model_copy(
                update={"access": [AccessRule(roles=["sre.oncall", "admin"], tools=["get.page"])]}
            ),
        )
    )
    name = fleet.servers[0].name
    matches = re.compile(pattern).search
    assert matches(f"{name}/get.page/admin") and matches(f"{name}/get.page/dev sre.oncall")
    assert not matches(f"{name}/get.page/administrator") and not matches(f"{name}/get.page/sre-oncall")
    assert not matches(f"{name}/getxpage/admin") and not matches(f"{name}/get.page2/admin")
    assert not matches(f"x{name}/get.page/admin") and not matches(f"{name}x/get.page/admin")


def test_stateful_and_stateless_servers_are_told_apart() -> None:
    parsed = sections(haproxy_cfg(fleet_for("prod")))
    assert "stick on req.hdr(mcp-session-id)" in parsed["backend server_grafana"]
    assert "stick on req.hdr(mcp-session-id)" not in parsed["backend server_github"]  # stateless: true


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rendering_is_byte_stable(env: str) -> None:
    fleet = fleet_for(env)
    first = render_gateway_config(fleet)
    assert render_gateway_config(fleet) == first
    shuffled = dataclasses.replace(fleet, servers=tuple(reversed(fleet.servers)))
    assert render_gateway_config(shuffled) == first


def test_tls_is_terminated_by_haproxy_unless_the_nlb_holds_an_acm_certificate() -> None:
    own = sections(haproxy_cfg(fleet_for("prod")))["frontend mcp"]
    certificate = f'"${{{CERT_DIR_ENV}-{CERT_DIR}}}/{CERT_FILE}"'
    assert f'bind "${{{ADDRESS_ENV}-}}:{TLS_PORT}" ssl crt {certificate} alpn http/1.1' in own
    nlb = sections(haproxy_cfg(acm("prod")))
    assert f'bind "${{{ADDRESS_ENV}-}}:{PLAIN_PORT}"' in nlb["frontend mcp"]
    assert not [line for line in nlb["global"] if line.startswith("ssl-")]


def test_metrics_and_health_have_their_own_port() -> None:
    prometheus = sections(haproxy_cfg(fleet_for("dev")))["frontend prometheus"]
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


def token(fleet: Fleet, server: str, roles: str = "engineer", subject: str = "alice", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": fleet.settings.gateway.auth.issuer,
        "aud": fleet.audience(server),
        "sub": subject,
        "roles": roles,
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode(payload, signing_key(), algorithm="RS256")


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jwt") / "issuer.pem"
    path.write_text(public_key_pem(signing_key()), encoding="utf-8")
    return path


def gateway_env(
    config_dir: Path, cert_dir: Path, key_file: Path, address: str = "", pod: str = "mcp-gateway-0"
) -> dict[str, str]:
    """What the pod's environment gives HAProxy: its name, and here the directories of the test's
    configuration and certificate, and the issuer's key."""
    return {
        "PATH": "/usr/sbin:/usr/bin:/bin",
        "HOSTNAME": pod,
        CONFIG_DIR_ENV: str(config_dir),
        CERT_DIR_ENV: str(cert_dir),
        JWT_KEY_ENV: str(key_file),
        ADDRESS_ENV: address,
    }


def peer_records(fleet: Fleet, address: str = "127.0.0.1") -> dict[str, list[str]]:
    return {peer_service_host(fleet.settings, pod): [address] for pod in peer_names(fleet.settings)}


def check(
    config: GatewayConfig, fleet: Fleet, tmp_path: Path, cert_dir: Path, key_file: Path
) -> subprocess.CompletedProcess[str]:
    path = write_config(config, tmp_path / "config")
    with cluster_dns(peer_records(fleet), tmp_path) as (_, resolv_conf):
        # -dW: a warning fails the check too.
        return run_in_sandbox(
            resolv_conf,
            [haproxy(), "-dW", "-c", "-f", str(path)],
            gateway_env(path.parent, cert_dir, key_file),
        )


@pytest.mark.parametrize("env", [*ENVIRONMENTS, "prod-acm"])
def test_haproxy_accepts_the_configuration(env: str, tmp_path: Path, cert_dir: Path, key_file: Path) -> None:
    fleet = acm("prod") if env == "prod-acm" else fleet_for(env)
    result = check(render_gateway_config(fleet), fleet, tmp_path, cert_dir, key_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout


def test_the_check_catches_a_broken_configuration(tmp_path: Path, cert_dir: Path, key_file: Path) -> None:
    fleet = fleet_for("dev")
    config = render_gateway_config(fleet)
    broken = {**config, CONFIG_KEY: config[CONFIG_KEY].replace("stick on req.hdr", "stick onn req.hdr")}
    assert check(broken, fleet, tmp_path, cert_dir, key_file).returncode != 0
    bad_pattern = {**config, ACCESS_FILE: config[ACCESS_FILE] + "^unclosed/(group\n"}
    assert check(bad_pattern, fleet, tmp_path, cert_dir, key_file).returncode != 0


# The configuration, unmodified, served by a real HAProxy in front of fake replicas that cluster DNS
# names: everything that decides routing, authentication, access and rates is the shipped text.

GATEWAY_ADDRESS = "127.0.0.2"
REPLICA_ADDRESSES = ("127.0.0.11", "127.0.0.12")
SERVED = ("everything", "github", "postgres")
CALLER_LIMIT, SERVER_LIMIT = 6, 9


class Replica(ThreadingHTTPServer):
    """Answers with what it received; opens a session on every request that carries none."""

    def __init__(self, label: str, address: str, port: int) -> None:
        super().__init__((address, port), ReplicaHandler)
        self.label = label
        self.issued = 0


class ReplicaHandler(BaseHTTPRequestHandler):
    server: Replica

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps(
            {
                "replica": self.server.label,
                "path": self.path,
                "host": self.headers.get("host"),
                "prefix": self.headers.get("x-forwarded-prefix"),
                "request_id": self.headers.get("x-request-id"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        if "mcp-session-id" not in self.headers:
            self.server.issued += 1
            self.send_header("mcp-session-id", f"{self.server.label}-{self.server.issued}")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclasses.dataclass
class Running:
    fleet: Fleet
    port: int
    metrics_port: int
    log: Path


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, key_file: Path, cert_dir: Path) -> Iterator[Running]:
    """dev's configuration (it has an SSE server), TLS at the NLB, low rate limits to reach them."""
    # Low limits for github only, to reach them; the other servers keep the environment's.
    base = acm("dev")
    limits = RateLimits(per_caller_per_minute=CALLER_LIMIT, per_server_per_minute=SERVER_LIMIT)
    fleet = dataclasses.replace(
        base,
        servers=tuple(
            dataclasses.replace(s, spec=s.spec.model_copy(update={"rate_limits": limits}))
            if s.name == "github"
            else s
            for s in base.servers
        ),
    )
    workdir = tmp_path_factory.mktemp("gateway")
    path = write_config(render_gateway_config(fleet), workdir / "config")
    replicas: dict[tuple[str, int], Replica] = {}
    records = peer_records(fleet, "127.0.0.3")
    for name in SERVED:
        server = next(s for s in fleet.servers if s.name == name)
        port = server.spec.transport.port
        for index, address in enumerate(REPLICA_ADDRESSES):
            if (address, port) not in replicas:
                replicas[(address, port)] = Replica(f"r{index + 1}", address, port)
        records[endpoints_host(server)] = list(REPLICA_ADDRESSES)
    for replica in replicas.values():
        threading.Thread(target=replica.serve_forever, daemon=True).start()
    log = workdir / "haproxy.log"
    with cluster_dns(records, workdir) as (_, resolv_conf), log.open("wb") as output:
        process = subprocess.Popen(
            in_sandbox(resolv_conf, [haproxy(), "-db", "-f", str(path)]),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=gateway_env(path.parent, cert_dir, key_file, GATEWAY_ADDRESS),
        )
        running = Running(fleet, PLAIN_PORT, METRICS_PORT, log)
        try:
            wait_until_served(running, process)
            yield running
        finally:
            process.terminate()
            process.wait(timeout=10)
            for replica in replicas.values():
                replica.shutdown()
                replica.server_close()


def wait_until_served(running: Running, process: subprocess.Popen[bytes]) -> None:
    """Until DNS has filled every served backend and its replicas pass their checks."""
    deadline = time.monotonic() + 30
    waiting = set(SERVED)
    while waiting and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"haproxy exited: {running.log.read_text()}")
        for name in sorted(waiting):
            try:
                path = "/servers/postgres/sse" if name == "postgres" else f"/servers/{name}/mcp"
                if call(running, "GET", path, token(running.fleet, name), subject=f"probe-{name}")[0] == 200:
                    waiting.discard(name)
            except OSError:
                pass
        time.sleep(0.2)
    if waiting:
        pytest.fail(f"not served within 30 s: {sorted(waiting)}\n{running.log.read_text()}")


def call(
    running: Running,
    method: str,
    path: str,
    bearer: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
    port: int | None = None,
    subject: str = "",
) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection(GATEWAY_ADDRESS, port or running.port, timeout=5)
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


def tool_call(tool: str) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
    ).encode()


def test_requests_reach_the_server_path_with_host_unchanged(gateway: Running) -> None:
    headers = {"Host": "mcp.dev.example.com"}
    bearer = token(gateway.fleet, "everything", subject="paths")
    status, response_headers, answer = call(
        gateway, "POST", "/servers/everything/mcp?probe=1", bearer, headers
    )
    assert status == 200
    assert answer["path"] == "/mcp?probe=1"
    assert answer["host"] == "mcp.dev.example.com"
    assert answer["prefix"] == "/servers/everything"
    # One correlation id, seen by the server and returned to the client.
    assert answer["request_id"] and response_headers["x-request-id"] == answer["request_id"]
    status, _, answer = call(
        gateway, "POST", "/servers/github/mcp", token(gateway.fleet, "github", subject="paths")
    )
    assert (status, answer["path"]) == (200, "/")


def test_sse_servers_get_their_stream_and_message_paths(gateway: Running) -> None:
    bearer = token(gateway.fleet, "postgres", subject="sse")
    status, _, answer = call(gateway, "GET", "/servers/postgres/sse", bearer)
    assert (status, answer["path"]) == (200, "/sse")
    status, _, answer = call(gateway, "POST", "/servers/postgres/messages/?session_id=abc", bearer)
    assert (status, answer["path"]) == (200, "/messages/?session_id=abc")


def test_legacy_sessions_stay_on_the_replica_that_opened_them(gateway: Running) -> None:
    sessions: dict[str, str] = {}
    for index in range(6):
        bearer = token(gateway.fleet, "everything", subject=f"session-{index}")
        _, headers, answer = call(gateway, "POST", "/servers/everything/mcp", bearer)
        sessions[headers["mcp-session-id"]] = answer["replica"]
        for _ in range(3):
            _, _, again = call(
                gateway,
                "POST",
                "/servers/everything/mcp",
                bearer,
                {"mcp-session-id": headers["mcp-session-id"]},
            )
            assert again["replica"] == answer["replica"]
    assert set(sessions.values()) == {"r1", "r2"}, "both replicas should open sessions"


def test_a_request_without_a_valid_token_for_this_server_gets_401(gateway: Running) -> None:
    fleet = gateway.fleet
    expired = token(fleet, "everything", exp=int(time.time()) - 5)
    foreign = jwt.encode(
        {
            "iss": "https://elsewhere.example.com/",
            "aud": fleet.audience("everything"),
            "sub": "x",
            "exp": int(time.time()) + 60,
        },
        signing_key(),
        algorithm="RS256",
    )
    # Signed with the public key as an HMAC secret: the classic algorithm confusion.
    confused = jwt.encode(
        {
            "iss": fleet.settings.gateway.auth.issuer,
            "aud": fleet.audience("everything"),
            "sub": "x",
            "exp": int(time.time()) + 60,
        },
        "/etc/haproxy/jwt/issuer.pem",
        algorithm="HS256",
    )
    tampered = token(fleet, "everything")[:-4] + "AAAA"
    for bearer in (None, token(fleet, "github"), expired, foreign, confused, tampered, "not-a-jwt"):
        status, headers, answer = call(gateway, "POST", "/servers/everything/mcp", bearer)
        assert status == 401, bearer
        assert answer["error"]["code"] == -32001 and answer["jsonrpc"] == "2.0"
        assert headers["www-authenticate"].startswith(
            'Bearer resource_metadata="https://mcp.dev.example.com/.well-known/oauth-protected-resource/servers/everything/mcp"'
        )


def test_protected_resource_metadata_names_the_audience_and_the_issuer(gateway: Running) -> None:
    status, _, answer = call(gateway, "GET", "/.well-known/oauth-protected-resource/servers/everything/mcp")
    assert status == 200
    assert answer["resource"] == gateway.fleet.audience("everything")
    assert answer["authorization_servers"] == [gateway.fleet.settings.gateway.auth.issuer]


def test_tools_the_callers_roles_do_not_open_get_403(gateway: Running) -> None:
    fleet = gateway.fleet
    sre = token(fleet, "everything", roles="sre oncall", subject="bob")
    engineer = token(fleet, "everything", roles="engineer", subject="carol")
    # Legacy clients name the tool in the body only.
    status, _, answer = call(gateway, "POST", "/servers/everything/mcp", sre, body=tool_call("get-env"))
    assert status == 403 and answer["error"]["code"] == -32003, answer
    assert call(gateway, "POST", "/servers/everything/mcp", sre, body=tool_call("echo"))[0] == 200
    assert call(gateway, "POST", "/servers/everything/mcp", engineer, body=tool_call("get-env"))[0] == 200
    # Modern clients in the mcp-method and mcp-name headers too; both must agree.
    modern = {"mcp-method": "tools/call", "mcp-name": "get-env"}
    assert call(gateway, "POST", "/servers/everything/mcp", sre, modern, tool_call("get-env"))[0] == 403
    hiding = {"mcp-method": "tools/call", "mcp-name": "echo"}
    assert call(gateway, "POST", "/servers/everything/mcp", sre, hiding, tool_call("get-env"))[0] == 400
    # A role that merely contains an admitted one is not it.
    pretender = token(fleet, "everything", roles="engineers", subject="dave")
    assert call(gateway, "POST", "/servers/everything/mcp", pretender, body=tool_call("get-env"))[0] == 403


def test_unreadable_json_rpc_is_refused(gateway: Running) -> None:
    bearer = token(gateway.fleet, "everything", subject="erin")
    batch = b'[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-env"}}]'
    assert call(gateway, "POST", "/servers/everything/mcp", bearer, body=batch)[0] == 400
    assert call(gateway, "POST", "/servers/everything/mcp", bearer, body=b"not json")[0] == 400
    # A JSON-RPC response (to a server's request) names no method and passes.
    assert (
        call(
            gateway, "POST", "/servers/everything/mcp", bearer, body=b'{"jsonrpc":"2.0","id":3,"result":{}}'
        )[0]
        == 200
    )


def test_callers_and_servers_over_their_rate_get_429(gateway: Running) -> None:
    fleet = gateway.fleet
    statuses = [
        call(gateway, "POST", "/servers/github/mcp", token(fleet, "github", subject="frank"))[0]
        for _ in range(CALLER_LIMIT + 2)
    ]
    assert statuses[:CALLER_LIMIT] == [200] * CALLER_LIMIT and statuses[-1] == 429
    status, headers, answer = call(
        gateway, "POST", "/servers/github/mcp", token(fleet, "github", subject="frank")
    )
    assert status == 429 and headers["retry-after"] == "60" and answer["error"]["code"] == -32029
    # Others still pass until the server's own budget is spent.
    others = [
        call(gateway, "POST", "/servers/github/mcp", token(fleet, "github", subject=f"g{i}"))[0]
        for i in range(SERVER_LIMIT)
    ]
    assert others[-1] == 429


def test_unknown_paths_and_unbounded_or_large_bodies_are_refused(gateway: Running) -> None:
    assert call(gateway, "POST", "/servers/nope/mcp")[0] == 404
    assert call(gateway, "POST", "/mcp")[0] == 404
    assert call(gateway, "POST", "/servers/everything/mcp/more")[0] == 404
    assert call(gateway, "GET", "/servers/postgres")[0] == 404
    assert call(gateway, "GET", "/.well-known/oauth-protected-resource/servers/everything/sse")[0] == 404
    connection = http.client.HTTPConnection(GATEWAY_ADDRESS, gateway.port, timeout=5)
    connection.request("POST", "/servers/everything/mcp", body=iter([b"{}"]), encode_chunked=True)
    assert connection.getresponse().status == 411
    connection.close()
    with socket.create_connection((GATEWAY_ADDRESS, gateway.port), timeout=5) as raw:
        raw.sendall(
            b"POST /servers/everything/mcp HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
            + b"x" * 65536
        )
        assert raw.recv(64).startswith(b"HTTP/1.1 413")


def test_access_log_is_one_json_object_per_request_and_never_a_token(gateway: Running) -> None:
    bearer = token(gateway.fleet, "everything", roles="sre", subject="logged-caller")
    call(gateway, "POST", "/servers/everything/mcp", bearer, body=tool_call("get-env"))
    time.sleep(0.3)
    text = gateway.log.read_text()
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    denied = [e for e in entries if e["caller"] == "logged-caller"]
    assert denied and denied[-1]["status"] == 403 and denied[-1]["tool"] == "get-env"
    assert denied[-1]["rpc_method"] == "tools/call" and denied[-1]["request_id"]
    assert bearer not in text and bearer.split(".")[2] not in text


def test_metrics_and_health_answer_on_the_metrics_port(gateway: Running) -> None:
    status, _, body = call(gateway, "GET", "/metrics", port=gateway.metrics_port)
    assert status == 200 and b"haproxy_backend_" in body
    assert call(gateway, "GET", "/healthz", port=gateway.metrics_port)[0] == 200
    assert call(gateway, "GET", "/metrics")[0] == 404


# The Kubernetes objects


def pod_of(objects: dict[str, K8sObject]) -> K8sObject:
    pod: K8sObject = one(objects, "StatefulSet")["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_gateway_pod_is_hardened_like_the_servers(env: str) -> None:
    objects = objects_of(fleet_for(env))
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
    assert kinds <= {"configMap", "emptyDir", "secret", "projected"}
    namespace = one(objects, "Namespace")["metadata"]
    assert namespace["name"] == fleet_for(env).settings.gateway_namespace
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace["labels"]["istio.io/dataplane-mode"] == "ambient"


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_run_a_highly_available_gateway(env: str) -> None:
    fleet = fleet_for(env)
    objects = objects_of(fleet)
    deployment = one(objects, "StatefulSet")
    assert deployment["spec"]["replicas"] >= 2
    assert one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    zone, host = pod_of(objects)["topologySpreadConstraints"]
    assert zone["topologyKey"] == "topology.kubernetes.io/zone"
    assert zone["whenUnsatisfiable"] == (
        "DoNotSchedule" if fleet.settings.strictness == "strict" else "ScheduleAnyway"
    )
    assert host["topologyKey"] == "kubernetes.io/hostname"


@pytest.mark.parametrize("env", ["local", "dev"])
def test_a_single_replica_gets_no_disruption_budget(env: str) -> None:
    assert not [o for o in objects_of(fleet_for(env)).values() if o["kind"] == "PodDisruptionBudget"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_load_balancer_is_an_nlb_on_eks_only_and_metrics_stay_inside(env: str) -> None:
    fleet = fleet_for(env)
    objects = objects_of(fleet)
    public = one(objects, "Service", "mcp-gateway")
    assert public["spec"]["type"] == "LoadBalancer"
    assert public["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "mcp", "protocol": "TCP"}]
    annotations = public["metadata"].get("annotations", {})
    if fleet.settings.cluster.provider == "eks":
        assert annotations == NLB_ANNOTATIONS
    else:
        assert annotations == {}
    metrics = one(objects, "Service", "mcp-gateway-metrics")
    assert metrics["spec"]["type"] == "ClusterIP"
    assert [p["port"] for p in metrics["spec"]["ports"]] == [METRICS_PORT]


def test_acm_moves_tls_to_the_nlb() -> None:
    objects = objects_of(acm("prod"))
    annotations = one(objects, "Service", "mcp-gateway")["metadata"]["annotations"]
    prefix = "service.beta.kubernetes.io/aws-load-balancer-"
    assert annotations[f"{prefix}ssl-cert"] == ACM_ARN
    assert annotations[f"{prefix}ssl-ports"] == "443"
    assert not [o for o in objects.values() if o["kind"] == "Certificate"]
    pod = pod_of(objects)
    assert pod["containers"][0]["ports"][0]["containerPort"] == PLAIN_PORT
    assert "certs" not in {v["name"] for v in pod["volumes"]}


def test_cert_manager_certificate_for_the_domain_is_mounted_as_haproxy_loads_it() -> None:
    fleet = fleet_for("prod")
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
    objects = objects_of(fleet_for("local"))
    issuer = one(objects, "ClusterIssuer")
    assert issuer["spec"] == {"selfSigned": {}} and "namespace" not in issuer["metadata"]
    assert one(objects, "Certificate")["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]


def test_a_config_change_rolls_the_pods() -> None:
    fleet = fleet_for("dev")
    annotation = one(objects_of(fleet), "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    config = render_gateway_config(fleet)
    assert annotation[CONFIG_HASH_ANNOTATION] == config_hash(config)
    objects = objects_of(fleet)
    carried = {
        **one(objects, "ConfigMap", "mcp-gateway-config")["data"],
        **one(objects, "ConfigMap", "mcp-gateway-access")["data"],
    }
    assert carried == config
    assert list(one(objects, "ConfigMap", "mcp-gateway-access")["data"]) == [ACCESS_FILE]
    [volume] = [v for v in pod_of(objects)["volumes"] if v["name"] == "config"]
    sources = [source["configMap"]["name"] for source in volume["projected"]["sources"]]
    assert sources == ["mcp-gateway-config", "mcp-gateway-access"]
    # A change to a map file alone rolls them too.
    assert config_hash({**config, ROUTES_FILE: config[ROUTES_FILE] + "#\n"}) != config_hash(config)
    smaller = dataclasses.replace(fleet, servers=fleet.servers[1:])
    changed = one(objects_of(smaller), "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    assert changed[CONFIG_HASH_ANNOTATION] != annotation[CONFIG_HASH_ANNOTATION]


def test_network_policy_opens_the_edge_port_metrics_to_prometheus_and_egress_to_servers_only() -> None:
    fleet = fleet_for("prod")
    policy = one(objects_of(fleet), "NetworkPolicy", "mcp-gateway")["spec"]
    assert policy["podSelector"]["matchLabels"].items() >= GATEWAY_POD_LABELS.items()
    edge, metrics, probes, peers_in = policy["ingress"]
    assert edge == {"ports": [{"protocol": "TCP", "port": TLS_PORT}]}
    [prometheus] = metrics["from"]
    assert prometheus["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": fleet.settings.monitoring_namespace
    }
    assert prometheus["podSelector"]["matchLabels"] == PROMETHEUS_POD_LABELS
    assert {p["port"] for p in metrics["ports"]} == {METRICS_PORT, 15008}
    assert {p["port"] for p in probes["ports"]} == {METRICS_PORT}
    dns, *servers, peers_out = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    # Replicas share their stick tables with each other only.
    for rule, side in ((peers_in, "from"), (peers_out, "to")):
        assert rule[side] == [{"podSelector": {"matchLabels": policy["podSelector"]["matchLabels"]}}]
        assert {p["port"] for p in rule["ports"]} == {10000, 15008}
    reached = {
        (rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], name, port["port"])
        for rule in servers
        for name in rule["to"][0]["podSelector"]["matchExpressions"][0]["values"]
        for port in rule["ports"]
    }
    for server in fleet.servers:
        assert (server.namespace, server.name, server.spec.transport.port) in reached
        assert (server.namespace, server.name, 15008) in reached
    assert {ns for ns, _, _ in reached} == set(fleet.namespaces)


def test_every_server_gets_a_headless_endpoints_service() -> None:
    fleet = fleet_for("staging")
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
    fleet = fleet_for("local")
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
        config_map(fleet_for("dev").settings, "mcp-gateway-config", {CONFIG_KEY: "#" * (1024 * 1024 + 1)})


@pytest.mark.parametrize("env", [*ENVIRONMENTS, "prod-acm"])
def test_objects_are_valid_kubernetes(env: str) -> None:
    fleet = acm("prod") if env == "prod-acm" else fleet_for(env)
    built = [o for o in objects_of(fleet).values() if o["apiVersion"].split("/")[0] not in CRD_GROUPS]
    assert {o["kind"] for o in built} >= {"Namespace", "StatefulSet", "Service", "NetworkPolicy", "ConfigMap"}
    for obj in built:
        # Raises ValidationError naming the field when an object is not valid Kubernetes.
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


# The component, under the recording mock engine


def test_gateway_component_registers_its_objects_under_itself() -> None:
    fleet = fleet_for("prod")
    built: dict[str, str] = {}

    def program() -> None:
        built.update(Gateway("gateway", fleet, TEST_PUBLIC_KEY_TEXT).config)

    registrations = run_program(program, project="mcpfleet", stack="prod", config={})
    [component] = [r for r in registrations if r.type == TYPE_TOKEN]
    children = [r for r in registrations if r.parent == component.urn]
    assert sorted(r.name for r in children) == sorted(objects_of(fleet))
    assert built == render_gateway_config(fleet)
    deployment = next(r.inputs for r in children if r.inputs.get("kind") == "StatefulSet")
    annotation = deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    assert annotation == config_hash(built)
    assert type(deployment["spec"]["replicas"]) is int
    types = {r.inputs["kind"]: r.type for r in children}
    assert types["Certificate"] == "kubernetes:cert-manager.io/v1:Certificate"
    assert types["PeerAuthentication"] == "kubernetes:security.istio.io/v1:PeerAuthentication"


@pytest.mark.parametrize("fleet", [fleet_for("prod"), acm("prod")], ids=["cert-manager", "acm"])
def test_only_the_serving_port_takes_plaintext_in_the_strict_mesh(fleet: Fleet) -> None:
    policy = one(objects_of(fleet), "PeerAuthentication")
    port = TLS_PORT if fleet.settings.gateway.tls != "acm" else PLAIN_PORT
    assert policy["spec"]["mtls"] == {"mode": "STRICT"}
    assert policy["spec"]["portLevelMtls"] == {str(port): {"mode": "PERMISSIVE"}}
    assert policy["spec"]["selector"]["matchLabels"].items() >= GATEWAY_POD_LABELS.items()
