"""Container image references, split the way the container runtime reads them."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policies.rules._k8s import _POD_SPEC_PATHS, containers, dig, kind_of, pod_spec, where

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# A pod template annotation the program writes when a workload's image is named by its release tag until
# deploy, where its digest is set (the MCP router: `pulumi config set routerImage`, which `pulumi up`
# requires). Such an image is reported by image-digest-at-deploy, never as pinned.
DIGEST_AT_DEPLOY_ANNOTATION = "mcpfleet.io/image-digest"


@dataclass(frozen=True)
class ImageRef:
    text: str
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def pinned(self) -> bool:
        return self.digest is not None and _DIGEST.match(self.digest) is not None


def parse_image(text: str) -> ImageRef:
    name, _, digest = text.partition("@")
    first, _, rest = name.partition("/")
    # Docker's rule: the first component is a registry only if it looks like a host.
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", name
    repository, _, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    return ImageRef(text, registry, repository, tag or None, digest or None)


def images(resource_type: str, inputs: Mapping[str, Any]) -> Iterator[tuple[str, ImageRef]]:
    """(where, image) for every container of a workload."""
    spec = pod_spec(resource_type, inputs)
    if spec is None:
        return
    for container in containers(spec):
        image = container.get("image")
        if isinstance(image, str):
            yield where(resource_type, inputs, container), parse_image(image)


def digest_at_deploy(resource_type: str, inputs: Mapping[str, Any]) -> str | None:
    """What a workload's pod template says about where its images' digest comes from, if it says so."""
    path = _POD_SPEC_PATHS.get(kind_of(resource_type) or "")
    if path is None:
        return None
    value = dig(inputs, *path[:-1], "metadata", "annotations", DIGEST_AT_DEPLOY_ANNOTATION)
    return value if isinstance(value, str) and value else None
