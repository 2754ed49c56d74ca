"""Resolve an image tag to its manifest digest over the OCI distribution API, as `crane digest` does.

`HEAD /v2/<name>/manifests/<tag>` accepting indexes, manifest lists and single manifests, so a multi-arch
tag resolves to its index (what every platform pulls); the digest is the `Docker-Content-Digest` header,
or the sha256 of the manifest's bytes when a registry leaves the header out. Public registries answer an
anonymous request with 401 and a `Bearer` challenge; python-dxf fetches the anonymous token from the
challenge's realm and retries.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from dxf import DXF, DXFBase
from dxf.exceptions import DXFError, DXFUnauthorizedError

from mcpfleet.pin.reference import Location

INDEX_TYPES = frozenset(
    {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}
)
MANIFEST_TYPES = INDEX_TYPES | {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class RegistryError(Exception):
    """The registry could not give a digest; the message says why in one line, never quoting a token."""


@dataclass(frozen=True)
class Resolved:
    """What a tag pointed to when asked."""

    digest: str
    media_type: str
    source: str
    """The manifest's API URL."""

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def _anonymous(registry: DXFBase, response: requests.Response) -> None:
    """The auth hook python-dxf calls on a 401: follow the registry's challenge without credentials."""
    challenge = response.headers.get("WWW-Authenticate", "")
    if not challenge.lower().startswith("bearer "):
        scheme = challenge.split(" ", 1)[0] or "no challenge"
        raise RegistryError(f"the registry wants credentials ({scheme}), not an anonymous pull")
    registry.authenticate(response=response)


def _media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip()


def _host(url: str | None) -> str:
    return urlsplit(url or "").netloc or "the registry"


def _explain(exc: Exception, location: Location, tag: str, timeout: float) -> str:
    if isinstance(exc, RegistryError):
        return str(exc)
    if isinstance(exc, DXFUnauthorizedError):
        return "refused anonymous access (HTTP 401): the image is private, or the name is wrong"
    if isinstance(exc, requests.exceptions.SSLError):
        return (
            f"TLS failed with {_host(exc.request.url if exc.request else None)}: the certificate is not"
            " trusted (a private CA goes in --cacert)"
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer from {_host(exc.request.url if exc.request else None)} within {timeout:g}s"
    if isinstance(exc, requests.exceptions.ConnectionError):
        # urllib3 nests the socket's own words ("Name or service not known", "Connection refused").
        errno = _ERRNO.search(str(exc))
        why = f" ({errno.group(1).strip()})" if errno else ""
        return f"cannot connect to {_host(exc.request.url if exc.request else None)}{why}"
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        host = _host(exc.response.url)
        if host != location.api_host:
            return f"the token service {host} answered HTTP {status}"
        if status == 404:
            return f"tag {tag} not found in {location.registry}/{location.name} (HTTP 404)"
        if status == 429:
            return f"{host} is rate limiting requests (HTTP 429); try again later"
        return f"{host} answered HTTP {status}"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"request failed: {type(exc).__name__}"
    if isinstance(exc, DXFError | ValueError | KeyError):
        # A token answer without a token, a malformed challenge: the registry broke the protocol.
        return f"unexpected answer from {location.api_host} ({type(exc).__name__}: {exc})"
    raise exc


def resolve(location: Location, tag: str, *, cafile: Path | None = None, timeout: float = 20.0) -> Resolved:
    """The digest tag points to now; RegistryError when the registry cannot say."""
    source = location.manifest_url(tag)
    verify: bool | str = str(cafile) if cafile is not None else True
    try:
        with DXF(location.api_host, location.name, auth=_anonymous, tlsverify=verify, timeout=timeout) as api:
            digest, response = api.head_manifest_and_response(tag)
            media_type = _media_type(response)
            if not digest:
                _, response = api.get_manifest_and_response(tag)
                media_type = _media_type(response)
                digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
    except Exception as exc:
        raise RegistryError(_explain(exc, location, tag, timeout)) from None
    if not _DIGEST.match(digest):
        raise RegistryError(f"{location.api_host} gave a digest that is not sha256: {digest[:80]!r}")
    if media_type not in MANIFEST_TYPES:
        raise RegistryError(
            f"{location.api_host} served a {media_type or 'untyped'} manifest, not an OCI or Docker v2 one"
        )
    return Resolved(digest, media_type, source)
