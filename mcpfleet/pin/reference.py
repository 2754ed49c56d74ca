"""Where an image repository lives: the registry host to ask and the repository name the API knows it by.

Docker's rules: the first path part is a registry host only when it looks like one (a dot, a port or
`localhost`); otherwise the image is on Docker Hub, whose API host is `registry-1.docker.io` and whose
one-part names live under `library/`.
"""

from __future__ import annotations

from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API})


@dataclass(frozen=True)
class Location:
    """An image repository as the distribution API addresses it."""

    registry: str
    """The registry as the catalog names it (`docker.io` when the catalog names none)."""
    api_host: str
    """The host (and port) that serves `/v2/`."""
    name: str
    """The repository name in that registry's API, e.g. `library/haproxy`."""

    def manifest_url(self, reference: str) -> str:
        """The manifest's API URL: the page a registry pin names as its source."""
        return f"https://{self.api_host}/v2/{self.name}/manifests/{reference}"


def locate(repository: str) -> Location:
    """The registry and API name of a catalog `image.repository`."""
    first, slash, rest = repository.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, name = first, rest
    else:
        registry, name = DOCKER_HUB, repository
    if registry in _DOCKER_HUB_ALIASES:
        if "/" not in name:
            name = f"library/{name}"
        return Location(registry, DOCKER_HUB_API, name)
    return Location(registry, registry, name)
