"""A real OCI registry on loopback for the pin tests: CNCF distribution 2.8 (Debian's `docker-registry`)
over TLS, images built here as OCI layouts and pushed by `skopeo`, and a token service for the anonymous
bearer flow the public registries use.

Every image is made in the test from bytes it chooses, so its digest is known before the registry is asked.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.examples.running import free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
START_SECONDS = 20.0
SERVICE = "pin-test-registry"
PUSHER = ("pusher", "push-secret")


def tool(name: str) -> str:
    """A program the tests need, from PATH (the tools folder `make test` fills comes first)."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: apt-get install docker-registry skopeo (Debian packages)")
    return found


# -- images -------------------------------------------------------------------------------------------


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(content: str) -> tuple[bytes, str]:
    """A gzipped tar holding one file, and the digest of the uncompressed tar (the rootfs diff id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = content.encode()
        info = tarfile.TarInfo("content.txt")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    tarred = raw.getvalue()
    return gzip.compress(tarred, mtime=0), f"sha256:{hashlib.sha256(tarred).hexdigest()}"


def _manifest(layout: Path, content: str, architecture: str) -> tuple[dict[str, Any], bytes]:
    layer, diff_id = _layer(content)
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Labels": {"content": content}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **_blob(layout, json.dumps(config).encode())},
        "layers": [{"mediaType": OCI_LAYER, **_blob(layout, layer)}],
    }
    data = json.dumps(manifest).encode()
    return {"mediaType": OCI_MANIFEST, **_blob(layout, data)}, data


@dataclass(frozen=True)
class Built:
    """An OCI layout holding one tagged image (or index) and the digest it must keep once pushed."""

    layout: Path
    ref: str
    digest: str


def build_image(root: Path, content: str, *, platforms: tuple[str, ...] = ()) -> Built:
    """An image whose one layer holds content; with platforms, an index of one image per architecture."""
    layout = root / f"layout-{uuid.uuid4().hex[:8]}"
    layout.mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    if platforms:
        entries = []
        for arch in platforms:
            descriptor, _ = _manifest(layout, f"{content} ({arch})", arch)
            entries.append({**descriptor, "platform": {"architecture": arch, "os": "linux"}})
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        top = {"mediaType": OCI_INDEX, **_blob(layout, json.dumps(index).encode())}
    else:
        top, _ = _manifest(layout, content, "amd64")
    ref = "image"
    annotated = {**top, "annotations": {"org.opencontainers.image.ref.name": ref}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [annotated]}))
    return Built(layout, ref, top["digest"])


# -- TLS --------------------------------------------------------------------------------------------


def self_signed(directory: Path, common_name: str, key: rsa.RSAPrivateKey | None = None) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (its own CA), as PEM: (cert, key)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / f"{common_name}.crt"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file = directory / f"{common_name}.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key_file


# -- token service ----------------------------------------------------------------------------------


@dataclass
class TokenService:
    """Issues registry tokens as Docker Hub's does: pull for anyone, push only with the pusher's password.

    Tokens are RS256 JWTs carrying the signing certificate in `x5c`, which the registry checks against
    its `rootcertbundle`. Every request is recorded, to assert what a client really asked for."""

    signing_key: rsa.RSAPrivateKey
    signing_cert: x509.Certificate
    private: frozenset[str] = frozenset()
    """Repositories anonymous callers get no access to (a private image)."""
    requests: list[dict[str, Any]] = field(default_factory=list)

    def grant(self, scope: str, user: str | None) -> list[dict[str, Any]]:
        granted = []
        for item in scope.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if kind != "repository":
                continue
            allowed = wanted if user == PUSHER[0] else [a for a in wanted if a == "pull"]
            if user is None and name in self.private:
                allowed = []
            granted.append({"type": "repository", "name": name, "actions": allowed})
        return granted

    def token(self, scope: str, user: str | None, issuer: str) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": user or "",
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": self.grant(scope, user),
        }
        x5c = [base64.b64encode(self.signing_cert.public_bytes(serialization.Encoding.DER)).decode()]
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"x5c": x5c})


def _handler(service: TokenService, issuer: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            auth = self.headers.get("Authorization")
            user = None
            if auth and auth.startswith("Basic "):
                name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                if (name, password) != PUSHER:
                    self.send_response(401)
                    self.end_headers()
                    return
                user = name
            scope = " ".join(query.get("scope", []))
            service.requests.append(
                {"path": parts.path, "query": query, "authorization": auth is not None, "user": user}
            )
            token = service.token(scope, user, issuer)
            body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def token_service(
    directory: Path, cert: Path, key: Path, private: frozenset[str]
) -> Iterator[tuple[str, TokenService, Path]]:
    """The token service over TLS on a free port: (realm URL, the service, its signing certificate)."""
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_cert_file, _ = self_signed(directory, "token-signer", signing_key)
    signing_cert = x509.load_pem_x509_certificate(signing_cert_file.read_bytes())
    service = TokenService(signing_key, signing_cert, private)
    issuer = "pin-test-token-service"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(service, issuer))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/token", service, signing_cert_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- the registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    """A running distribution registry."""

    host: str
    """`127.0.0.1:<port>`, as an image repository names its registry."""
    cacert: Path
    cert_dir: Path
    """A folder holding the CA certificate as `ca.crt`, as skopeo's --dest-cert-dir wants it."""
    log: Path
    tokens: TokenService | None = None

    def push(self, built: Built, repository: str, tag: str, *, fmt: str | None = None) -> str:
        """skopeo copies built to <host>/<repository>:<tag>; the digest the registry now holds for the tag."""
        dest = f"docker://{self.host}/{repository}:{tag}"
        command = [tool("skopeo"), "--insecure-policy", "copy", "--quiet", "--all"]
        command += ["--dest-cert-dir", str(self.cert_dir)]
        if self.tokens is not None:
            command += ["--dest-creds", ":".join(PUSHER)]
        command += ["--preserve-digests"] if fmt is None else ["--format", fmt]
        command += [f"oci:{built.layout}:{built.ref}", dest]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            pytest.fail(f"skopeo copy to {dest} failed ({done.returncode}): {done.stderr}\n{self.tail()}")
        return self.digest_of(repository, tag)

    def digest_of(self, repository: str, tag: str) -> str:
        """sha256 of the manifest bytes skopeo reads back for the tag (an oracle independent of pin)."""
        command = [tool("skopeo"), "--insecure-policy", "inspect", "--raw"]
        command += ["--cert-dir", str(self.cert_dir)]
        if self.tokens is not None:
            command += ["--creds", ":".join(PUSHER)]
        command.append(f"docker://{self.host}/{repository}:{tag}")
        done = subprocess.run(command, capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            pytest.fail(f"skopeo inspect failed: {done.stderr.decode()}\n{self.tail()}")
        return f"sha256:{hashlib.sha256(done.stdout).hexdigest()}"

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]


def _config(storage: Path, port: int, cert: Path, key: Path, auth: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "tls": {"certificate": str(cert), "key": str(key)}},
    }
    if auth is not None:
        config["auth"] = auth
    return config


def _ready(port: int, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/v2/", timeout=1, context=context):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 401  # up, and asking for a token
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def run_registry(
    root: Path, *, token_auth: bool = False, htpasswd: bool = False, private: frozenset[str] = frozenset()
) -> Iterator[Registry]:
    """`docker-registry serve` on a free loopback port with its own storage, stopped on exit."""
    binary = tool("docker-registry")
    tool("skopeo")
    root.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(root / "tls", "registry")
    cert_dir = root / "certs.d"
    cert_dir.mkdir()
    shutil.copy(cert, cert_dir / "ca.crt")
    port = free_port()
    with _token_auth(root, cert, key, token_auth, private) as (auth, tokens):
        if htpasswd:
            # No user at all: the registry asks every caller for a password (Basic), as a private one does.
            (root / "htpasswd").write_text("")
            auth = {"htpasswd": {"realm": "pin-test", "path": str(root / "htpasswd")}}
        config = root / "config.yml"
        config.write_text(json.dumps(_config(root / "storage", port, cert, key, auth)))
        log = root / "registry.log"
        context = ssl.create_default_context(cafile=str(cert))
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [binary, "serve", str(config)], stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            deadline = time.monotonic() + START_SECONDS
            while not _ready(port, context):
                if process.poll() is not None or time.monotonic() > deadline:
                    text = log.read_text(encoding="utf-8", errors="replace")[-3000:]
                    pytest.fail(f"docker-registry did not start on {port} (exit {process.poll()}):\n{text}")
                time.sleep(0.1)
            yield Registry(f"127.0.0.1:{port}", cert, cert_dir, log, tokens)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


@contextmanager
def _token_auth(
    root: Path, cert: Path, key: Path, enabled: bool, private: frozenset[str]
) -> Iterator[tuple[dict[str, Any] | None, TokenService | None]]:
    if not enabled:
        yield None, None
        return
    with token_service(root / "token", cert, key, private) as (realm, service, signing_cert):
        auth = {
            "token": {
                "realm": realm,
                "service": SERVICE,
                "issuer": "pin-test-token-service",
                "rootcertbundle": str(signing_cert),
            }
        }
        yield auth, service
