"""The gateway on one machine: the fleet's HAProxy configuration, forwarding to local router replicas,
and what a pod would give HAProxy (its certificate, the issuer's public key) made up locally for one run.

Locally there is no identity provider: each run makes a throwaway signing key, gives HAProxy its public
half, and mints one bearer token per server (that server's audience, every role its access rules name)
and one for the fleet endpoint (its own audience, every role of every server's rules), so the gateway's
checks run exactly as configured. The private key never touches the disk.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from components.gateway.config import (
    CERT_DIR_ENV,
    CONFIG_DIR_ENV,
    JWT_KEY_ENV,
    Upstream,
    bind_address,
    public_path,
    render_gateway_config,
)
from components.manifests.gateway import (
    ADDRESS_ENV,
    CERT_FILE,
    CONFIG_KEY,
    HEALTH_PATH,
    KEY_FILE,
    METRICS_PATH,
    METRICS_PORT,
    serving_port,
    terminates_tls,
)
from mcpfleet.fleet import FLEET_PATH, Fleet, FleetServer

LOOPBACK = "127.0.0.1"
TOKEN_LIFETIME_SECONDS = 12 * 3600
DEV_SUBJECT = "mcpfleet-dev"
CURVES: Mapping[str, ec.EllipticCurve] = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class GatewayError(Exception):
    """The gateway cannot be set up as asked."""


@dataclass(frozen=True)
class GatewayFiles:
    """What one run wrote for HAProxy, and the environment HAProxy starts with."""

    config: Path
    issuer_key: Path
    """The throwaway issuer's public key (PEM), which the router checks tokens against too."""
    tokens: Path
    certificate: Path | None
    env: dict[str, str]


def listen_on(config: str, fleet: Fleet, port: int, metrics_port: int | None = None) -> str:
    """config with its MCP listener moved from the pod's port to port, and its metrics listener to
    metrics_port when given (several gateways, or a gateway and a test, may share one machine)."""
    moved = _move_listener(config, serving_port(fleet.settings), port, "MCP")
    if metrics_port is not None:
        moved = _move_listener(moved, METRICS_PORT, metrics_port, "metrics")
    return moved


def _move_listener(config: str, pod_port: int, port: int, what: str) -> str:
    """The configuration writes each listener as `bind "<address>:<port>"...`; anything else means its
    shape changed under us."""
    pattern = re.compile(rf'^(\s*bind "{re.escape(bind_address())}:){pod_port}(")', re.MULTILINE)
    found = pattern.findall(config)
    if len(found) != 1:
        raise GatewayError(
            f"the gateway configuration has {len(found)} listeners on port {pod_port} (expected one):"
            f" cannot move its {what} listener to port {port}"
        )
    return pattern.sub(rf"\g<1>{port}\g<2>", config)


def base_url(fleet: Fleet, port: int) -> str:
    """The gateway's own URL (what `mcpfleet verify --endpoint` takes)."""
    scheme = "https" if terminates_tls(fleet.settings) else "http"
    return f"{scheme}://{LOOPBACK}:{port}"


def endpoint(fleet: Fleet, server: FleetServer, port: int) -> str:
    return f"{base_url(fleet, port)}{public_path(server)}"


def fleet_endpoint(fleet: Fleet, port: int) -> str:
    """The fleet endpoint: one MCP server over every server the router serves here."""
    return f"{base_url(fleet, port)}{FLEET_PATH}"


def metrics_url(port: int = METRICS_PORT) -> str:
    return f"http://{LOOPBACK}:{port}{METRICS_PATH}"


def health_url(port: int = METRICS_PORT) -> str:
    return f"http://{LOOPBACK}:{port}{HEALTH_PATH}"


def prepare(
    fleet: Fleet,
    routers: Sequence[str | Upstream],
    port: int,
    run_dir: Path,
    environ: Mapping[str, str],
    metrics_port: int | None = None,
) -> GatewayFiles:
    """Write the configuration, the issuer's public key, the tokens and (if HAProxy terminates TLS here)
    a self-signed certificate into run_dir; return them with HAProxy's environment.

    routers: the router replicas started here (`"127.0.0.1:PORT"`, or an Upstream naming its metrics
    port), which HAProxy forwards every routed request to; metrics_port moves HAProxy's metrics and
    health listener off the pod's fixed port."""
    settings = fleet.settings
    run_dir.mkdir(parents=True, exist_ok=True)
    # The fleet's configuration as every environment ships it, but with the router replicas started
    # here at their local addresses instead of the router's headless Service.
    files = render_gateway_config(fleet, upstreams=routers)
    config_dir = run_dir / "config"
    config_dir.mkdir(exist_ok=True)
    for name, text in files.items():
        if name == CONFIG_KEY:
            text = listen_on(text, fleet, port, metrics_port)
        _write(config_dir / name, text)
    config = config_dir / CONFIG_KEY

    key = signing_key(settings.gateway.auth.algorithm)
    public_key = run_dir / "issuer.pem"
    _write(
        public_key,
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    )
    tokens = run_dir / "tokens.json"
    _write(tokens, json.dumps(mint_tokens(fleet, key), indent=2, sort_keys=True) + "\n", private=True)

    env = {
        "PATH": environ.get("PATH", "/usr/sbin:/usr/bin:/bin"),
        ADDRESS_ENV: LOOPBACK,
        JWT_KEY_ENV: str(public_key),
        CONFIG_DIR_ENV: str(config_dir),
    }
    certificate = None
    if terminates_tls(settings):
        cert_dir = run_dir / "certs"
        certificate = self_signed(cert_dir, settings.domain)
        env[CERT_DIR_ENV] = str(cert_dir)
    return GatewayFiles(config=config, issuer_key=public_key, tokens=tokens, certificate=certificate, env=env)


def mint_tokens(fleet: Fleet, key: SigningKey) -> dict[str, str]:
    """One token per server: its audience, and every role its access rules name (space-separated); and
    under the fleet endpoint's path (`/mcp`, which no server name can be) one with that endpoint's
    audience and every role of every server's rules, so it lists every tool the fleet lets anyone call."""
    auth = fleet.settings.gateway.auth
    now = int(time.time())

    def token(audience: str, roles: set[str]) -> str:
        claims = {
            "iss": auth.issuer,
            "aud": audience,
            auth.subject_claim: DEV_SUBJECT,
            auth.roles_claim: " ".join(sorted(roles)),
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
        }
        return jwt.encode(claims, key, algorithm=auth.algorithm)

    tokens = {}
    every: set[str] = set()
    for server in fleet.servers:
        roles = {role for rule in server.spec.access for role in rule.roles}
        every |= roles
        tokens[server.name] = token(fleet.audience(server.name), roles)
    tokens[FLEET_PATH] = token(fleet.endpoint_audience, every)
    return tokens


def signing_key(algorithm: str) -> SigningKey:
    """A throwaway key for the issuer's algorithm (an EC curve for ES*, else 2048-bit RSA)."""
    if algorithm in CURVES:
        return ec.generate_private_key(CURVES[algorithm])
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed(cert_dir: Path, domain: str, addresses: Sequence[str] = (LOOPBACK,)) -> Path:
    """A certificate for addresses, localhost and the environment's domain, valid for a day; the key sits
    beside it as `<cert>.key`, where the configuration's `ssl-load-extra-files key` looks (the layout of
    cert-manager's Secret as the pod mounts it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcpfleet dev gateway")])
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [
        *(x509.IPAddress(ipaddress.ip_address(address)) for address in addresses),
        x509.DNSName("localhost"),
        x509.DNSName(domain),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_dir.mkdir(parents=True, exist_ok=True)
    path = cert_dir / CERT_FILE
    _write(path, certificate.public_bytes(serialization.Encoding.PEM).decode())
    _write(
        cert_dir / KEY_FILE,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        private=True,
    )
    return path


def _write(path: Path, text: str, private: bool = False) -> None:
    """Replace path at once (no half-written file), readable by this user only when private."""
    temporary = path.with_name(f".{path.name}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    descriptor = os.open(temporary, flags, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    temporary.replace(path)
