"""Pin the images of one environment: each enabled server's tag resolved to the digest its registry serves.

Where a pin is written follows the catalog's overrides: an environment that sets its own image tag (or
digest) under `environments.<env>.image` is pinned there; otherwise the entry's `image` is.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mcpfleet.catalog.loader import Catalog
from mcpfleet.catalog.models import Image, Server
from mcpfleet.model import EnvName
from mcpfleet.pin.edit import set_fields
from mcpfleet.pin.entries import Entries
from mcpfleet.pin.reference import Location, locate
from mcpfleet.pin.registry import RegistryError, Resolved, resolve

Status = Literal["pinned", "updated", "unchanged", "moved", "ok", "unpinned", "failed", "no tag"]
Resolver = Callable[[Location, str], Resolved]


@dataclass(frozen=True)
class ImageTarget:
    """One enabled server's image in one environment, and where its pin lives in the entry."""

    server: str
    image: Image
    """The image as the environment runs it (overrides applied)."""
    path: tuple[str, ...]
    """`("image",)` or `("environments", <env>, "image")`."""

    @property
    def field(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class ImagePin:
    """What the registry said about one target, against what the catalog pins."""

    target: ImageTarget
    status: Status
    resolved: Resolved | None = None
    error: str | None = None

    @property
    def previous(self) -> str | None:
        return self.target.image.digest


def effective_image(server: Server, environment: EnvName) -> tuple[Image, tuple[str, ...]]:
    """The image the environment runs, merged as the fleet merges it, and the path its pin belongs at."""
    override = server.environments[environment].image
    if override is None or not ({"tag", "digest"} & override.model_fields_set):
        return server.image, ("image",)
    merged = server.image.model_copy(update={f: getattr(override, f) for f in override.model_fields_set})
    return merged, ("environments", environment, "image")


def image_targets(catalog: Catalog, environment: EnvName) -> list[ImageTarget]:
    found = []
    for server in catalog.servers:
        if server.enabled_in(environment):
            image, path = effective_image(server, environment)
            found.append(ImageTarget(server.name, image, path))
    return found


def _resolve_all(
    targets: Sequence[ImageTarget], resolver: Resolver, concurrency: int
) -> dict[tuple[str, str], Resolved | str]:
    """Each distinct repository:tag asked once; a value is the answer or the reason there is none."""
    wanted = sorted({(t.image.repository, t.image.tag) for t in targets if t.image.tag is not None})

    def one(item: tuple[str, str]) -> Resolved | str:
        repository, tag = item
        try:
            return resolver(locate(repository), tag)
        except RegistryError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(wanted) or 1))) as pool:
        return dict(zip(wanted, pool.map(one, wanted), strict=True))


def resolve_pins(
    targets: Sequence[ImageTarget], resolver: Resolver, *, check: bool, concurrency: int = 8
) -> list[ImagePin]:
    """Compare each target's pin with what its tag resolves to now."""
    answers = _resolve_all(targets, resolver, concurrency)
    pins = []
    for target in targets:
        tag = target.image.tag
        if tag is None:
            pins.append(ImagePin(target, "no tag"))
            continue
        answer = answers[(target.image.repository, tag)]
        if isinstance(answer, str):
            pins.append(ImagePin(target, "failed", error=answer))
            continue
        previous = target.image.digest
        if previous is None:
            status: Status = "unpinned" if check else "pinned"
        elif previous == answer.digest:
            status = "ok" if check else "unchanged"
        else:
            status = "moved" if check else "updated"
        pins.append(ImagePin(target, status, answer))
    return pins


def digest_source(resolved: Resolved, day: datetime.date) -> str:
    """The registry's manifest URL, with the day it was read."""
    return f"{resolved.source}#resolved-{day.isoformat()}"


def apply_pins(entries: Entries, pins: Sequence[ImagePin], day: datetime.date) -> None:
    """Write new and moved digests into the opened entries (in memory)."""
    for pin in pins:
        if pin.status not in ("pinned", "updated") or pin.resolved is None:
            continue
        mapping = entries.open(pin.target.server).mapping(pin.target.path)
        values = {"digest": pin.resolved.digest, "digestSource": digest_source(pin.resolved, day)}
        set_fields(mapping, values, after="tag")


def registry_resolver(cafile: Path | None, timeout: float) -> Resolver:
    def resolver(location: Location, tag: str) -> Resolved:
        return resolve(location, tag, cafile=cafile, timeout=timeout)

    return resolver
