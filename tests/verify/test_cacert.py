"""`verify --cacert FILE`: a gateway whose certificate a private CA signed (as `mcpfleet dev`'s, or a
cluster's cert-manager CA) is verified when that CA is given, and refused, with the way out named,
when it is not; a file that holds no certificate is an error naming it, not a traceback."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp
from typer.testing import CliRunner

from examples.servers.common import create_app, parse_args
from examples.servers.units.server import SPEC as UNITS
from mcpfleet.cli.main import app
from tests.conftest import REPO, minimal_server
from tests.examples.running import free_port

pytestmark = pytest.mark.slow
runner = CliRunner()
CLOSED = "https://127.0.0.1:9"


@dataclass(frozen=True)
class Authority:
    """A CA, as a PEM file, and what it signs."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    pem: Path


def authority(folder: Path, name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    pem = folder / f"{name}.pem"
    pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Authority(key, certificate, pem)


def server_certificate(folder: Path, ca: Authority) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by ca, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    cert_file, key_file = folder / "gateway.pem", folder / "gateway.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@contextmanager
def serve_tls(app_: ASGIApp, cert_file: Path, key_file: Path) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app_,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the TLS server did not start"
        time.sleep(0.05)
    try:
        yield f"https://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Gateway:
    url: str
    ca: Authority
    stranger: Authority
    catalog: Path


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The units reference server over TLS, its certificate signed by a CA of its own; a catalog of it."""
    folder = tmp_path_factory.mktemp("tls")
    ca, stranger = authority(folder, "private-ca"), authority(folder, "another-ca")
    cert_file, key_file = server_certificate(folder, ca)
    catalog = folder / "catalog"
    (catalog / "servers").mkdir(parents=True)
    tools = yaml.safe_load((REPO / "examples" / "catalog" / "servers" / "units.yaml").read_text())["tools"]
    entry = minimal_server("units", tools=tools)
    (catalog / "servers" / "units.yaml").write_text(yaml.safe_dump(entry, sort_keys=False), encoding="utf-8")
    options = parse_args("units", ["--replica-id", "tls"])
    with serve_tls(create_app(UNITS, options), cert_file, key_file) as url:
        yield Gateway(url, ca, stranger, catalog)


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    # What this test trusts is what the command line says, not the machine's environment.
    for variable in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(variable, raising=False)


def verify(gateway: Gateway, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        [
            *("verify", "--env", "dev", "--catalog", str(gateway.catalog), "--endpoint", CLOSED),
            f"--server-url=units={gateway.url}",
            *("--timeout", "5", "--format", "json"),
            *args,
        ],
    )
    return result.exit_code, result.stdout, result.stderr


def test_the_gateways_ca_given_it_is_verified(gateway: Gateway) -> None:
    code, out, err = verify(gateway, "--cacert", str(gateway.ca.pem))
    assert code == 0, out + err
    (server,) = json.loads(out)["servers"]
    assert [(x["mode"], x["status"]) for x in server["listings"]] == [("modern", "ok"), ("legacy", "ok")]
    assert server["drift"]["found"] is False


def test_without_it_the_certificate_is_refused_and_the_option_named(gateway: Gateway) -> None:
    code, out, _ = verify(gateway)
    assert code == 1
    (server,) = json.loads(out)["servers"]
    assert server["status"] == "unreachable"
    for listing in server["listings"]:
        assert listing["detail"].startswith("TLS: the certificate is not trusted (")
        assert listing["detail"].endswith("trust its CA with --cacert FILE")


def test_another_ca_is_not_trusted_either(gateway: Gateway) -> None:
    # Only the CAs in the file: neither another one, nor the system's store.
    code, out, _ = verify(gateway, "--cacert", str(gateway.stranger.pem))
    assert code == 1
    (server,) = json.loads(out)["servers"]
    assert "TLS: the certificate is not trusted" in server["listings"][0]["detail"]


def test_the_environment_ca_file_is_no_longer_needed(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SSL_CERT_FILE (the only way before --cacert) still works; --cacert wins over it.
    monkeypatch.setenv("SSL_CERT_FILE", str(gateway.ca.pem))
    assert verify(gateway)[0] == 0
    assert verify(gateway, "--cacert", str(gateway.stranger.pem))[0] == 1


@pytest.mark.parametrize("content", [b"", b"not a certificate\n", b"-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_a_file_without_a_certificate_is_an_error_naming_it(
    gateway: Gateway, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "ca.pem"
    path.write_bytes(content)
    code, out, err = verify(gateway, "--cacert", str(path))
    assert code == 1
    assert out == "" and err == f"error: --cacert {path}: no PEM certificate in it\n"


def test_a_missing_or_unreadable_file(gateway: Gateway, tmp_path: Path) -> None:
    assert verify(gateway, "--cacert", str(tmp_path / "absent.pem"))[0] == 2
    assert verify(gateway, "--cacert", str(tmp_path))[0] == 2
    if os.geteuid() != 0:  # root reads any file
        unreadable = tmp_path / "private.pem"
        unreadable.write_bytes(gateway.ca.pem.read_bytes())
        unreadable.chmod(0)
        code, _, err = verify(gateway, "--cacert", str(unreadable))
        assert code == 1 and f"--cacert {unreadable}: cannot read it" in err
