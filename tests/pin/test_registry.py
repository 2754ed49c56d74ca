"""Digests from a real registry (distribution 2.8, images pushed by skopeo), and each way it can fail.

The digest pin reports is checked against the digest of the bytes the test built, or the manifest
skopeo reads back: never against pin's own answer.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mcpfleet.pin.reference import Location, locate
from mcpfleet.pin.registry import RegistryError, resolve
from tests.examples.running import free_port
from tests.pin.registry import Registry, build_image, self_signed

pytestmark = pytest.mark.slow


def test_a_single_image_resolves_to_its_manifest_digest(registry: Registry, tmp_path: Path) -> None:
    built = build_image(tmp_path, "single")
    assert registry.push(built, "reg/single", "1.0") == built.digest
    resolved = resolve(locate(f"{registry.host}/reg/single"), "1.0", cafile=registry.cacert)
    assert resolved.digest == built.digest
    assert resolved.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert resolved.source == f"https://{registry.host}/v2/reg/single/manifests/1.0"


def test_a_multi_arch_tag_resolves_to_its_index_not_one_platform(registry: Registry, tmp_path: Path) -> None:
    built = build_image(tmp_path, "multi", platforms=("amd64", "arm64"))
    assert registry.push(built, "reg/multi", "2.0") == built.digest
    resolved = resolve(locate(f"{registry.host}/reg/multi"), "2.0", cafile=registry.cacert)
    assert resolved.digest == built.digest
    assert resolved.is_index


def test_a_docker_v2_manifest_resolves_to_the_digest_the_registry_serves(
    registry: Registry, tmp_path: Path
) -> None:
    built = build_image(tmp_path, "docker format")
    served = registry.push(built, "reg/docker", "3.0", fmt="v2s2")
    assert served != built.digest  # converted by skopeo: a new manifest
    resolved = resolve(locate(f"{registry.host}/reg/docker"), "3.0", cafile=registry.cacert)
    assert resolved.digest == served
    assert resolved.media_type == "application/vnd.docker.distribution.manifest.v2+json"


def test_an_unknown_tag_or_repository_is_named(registry: Registry, tmp_path: Path) -> None:
    registry.push(build_image(tmp_path, "known"), "reg/known", "1")
    with pytest.raises(RegistryError, match=r"tag 9 not found in 127\.0\.0\.1:\d+/reg/known \(HTTP 404\)"):
        resolve(locate(f"{registry.host}/reg/known"), "9", cafile=registry.cacert)
    with pytest.raises(RegistryError, match=r"tag 1 not found in .*/reg/nobody"):
        resolve(locate(f"{registry.host}/reg/nobody"), "1", cafile=registry.cacert)


def test_an_untrusted_certificate_says_where_a_ca_goes(registry: Registry) -> None:
    with pytest.raises(RegistryError, match=r"TLS failed with 127\.0\.0\.1:\d+: .*--cacert"):
        resolve(locate(f"{registry.host}/reg/single"), "1.0")


def test_nothing_listening_is_a_connection_error() -> None:
    port = free_port()
    with pytest.raises(RegistryError, match=rf"cannot connect to 127\.0\.0\.1:{port} \(.*refused.*\)"):
        resolve(Location(f"127.0.0.1:{port}", f"127.0.0.1:{port}", "reg/x"), "1", timeout=2)


def test_anonymous_token_flow(token_registry: Registry, tmp_path: Path) -> None:
    built = build_image(tmp_path, "behind tokens", platforms=("amd64", "arm64"))
    assert token_registry.push(built, "pin/public", "1.0") == built.digest
    tokens = token_registry.tokens
    assert tokens is not None
    before = len(tokens.requests)
    resolved = resolve(locate(f"{token_registry.host}/pin/public"), "1.0", cafile=token_registry.cacert)
    assert resolved.digest == built.digest
    # One token request, anonymous, for exactly what the registry's challenge named.
    asked = tokens.requests[before:]
    assert asked == [
        {
            "path": "/token",
            "query": {"service": ["pin-test-registry"], "scope": ["repository:pin/public:pull"]},
            "authorization": False,
            "user": None,
        }
    ]


def test_a_private_image_is_refused_without_credentials(token_registry: Registry, tmp_path: Path) -> None:
    token_registry.push(build_image(tmp_path, "private"), "pin/private", "1.0")
    with pytest.raises(RegistryError, match=r"refused anonymous access \(HTTP 401\)"):
        resolve(locate(f"{token_registry.host}/pin/private"), "1.0", cafile=token_registry.cacert)


def test_a_registry_that_wants_a_password_says_so(basic_registry: Registry) -> None:
    with pytest.raises(
        RegistryError, match=r"the registry wants credentials \(Basic\), not an anonymous pull"
    ):
        resolve(locate(f"{basic_registry.host}/pin/app"), "1.0", cafile=basic_registry.cacert)


# A registry that sends no Docker-Content-Digest: distribution always sends it, so this one is a test
# double of the protocol (HTTP over TLS on loopback), serving a manifest built by the test.


@contextmanager
def headerless_registry(tmp_path: Path, manifest: bytes, media_type: str) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed(tmp_path / "tls", "headerless")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body: bool) -> None:
            if self.path != "/v2/pin/app/manifests/1.0":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(manifest)))
            self.end_headers()
            if body:
                self.wfile.write(manifest)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_without_the_digest_header_the_manifest_bytes_are_hashed(tmp_path: Path) -> None:
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    ).encode()
    expected = f"sha256:{hashlib.sha256(manifest).hexdigest()}"
    with headerless_registry(tmp_path, manifest, "application/vnd.oci.image.index.v1+json") as (host, ca):
        resolved = resolve(locate(f"{host}/pin/app"), "1.0", cafile=ca)
    assert resolved.digest == expected and resolved.is_index


def test_a_schema_1_manifest_is_refused(tmp_path: Path) -> None:
    schema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    refused = pytest.raises(
        RegistryError, match=r"served a .*v1\+prettyjws manifest, not an OCI or Docker v2"
    )
    with headerless_registry(tmp_path, b'{"schemaVersion": 1}', schema1) as (host, ca), refused:
        resolve(locate(f"{host}/pin/app"), "1.0", cafile=ca)
