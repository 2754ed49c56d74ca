"""Each server's pods: resolved from its headless Service (every address, again every few seconds) or
given as fixed addresses, and the pick of a pod for a request that no session binds."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable

from mcpfleet.router.config import Upstream, split_address

log = logging.getLogger("mcpfleet.router.upstreams")

RESOLVE_SECONDS = 5.0
Resolver = Callable[[str, int], Awaitable[list[str]]]


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ipaddress.ip_address(host).version == 6 else f"{host}:{port}"


async def resolve(host: str, port: int) -> list[str]:
    """Every address the name has now, as `ip:port`, sorted; [] when the name has none."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        if error.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            return []  # a headless Service with no ready pod has no record
        raise
    return sorted({format_address(str(info[4][0]), port) for info in infos})


class Endpoints:
    """The pods of one server and the requests outstanding on each."""

    def __init__(self, upstream: Upstream, resolver: Resolver = resolve) -> None:
        self.host = upstream.host
        self.port = upstream.port
        self.resolver = resolver
        fixed = [format_address(*split_address(a)) for a in upstream.addresses or []]
        self.addresses: list[str] = fixed
        self._members = frozenset(fixed)
        self.outstanding: dict[str, int] = {}
        self._turn = 0

    @property
    def dynamic(self) -> bool:
        return self.host is not None

    def set(self, addresses: Iterable[str]) -> None:
        self.addresses = list(addresses)
        self._members = frozenset(self.addresses)

    def has(self, pod: str) -> bool:
        return pod in self._members

    async def refresh(self) -> None:
        if self.host is None or self.port is None:
            return
        try:
            found = await self.resolver(self.host, self.port)
        except (TimeoutError, OSError) as error:
            # A DNS hiccup keeps the last known pods rather than refusing every request.
            log.warning(
                "resolving %s failed (%s); keeping %d known pods", self.host, error, len(self.addresses)
            )
            return
        if found != self.addresses:
            log.info("%s: %d pods", self.host, len(found))
            self.set(found)

    def pick(self, exclude: frozenset[str] = frozenset()) -> str | None:
        """The pod with the fewest outstanding requests, taking turns among equals."""
        addresses = self.addresses
        count = len(addresses)
        if not count:
            return None
        self._turn = (self._turn + 1) % count
        best: str | None = None
        best_load = 0
        for offset in range(count):
            pod = addresses[(self._turn + offset) % count]
            if pod in exclude:
                continue
            load = self.outstanding.get(pod, 0)
            if best is None or load < best_load:
                best, best_load = pod, load
                if load == 0:
                    break
        return best

    def begin(self, pod: str) -> None:
        self.outstanding[pod] = self.outstanding.get(pod, 0) + 1

    def end(self, pod: str) -> None:
        left = self.outstanding.get(pod, 1) - 1
        if left > 0:
            self.outstanding[pod] = left
        else:
            self.outstanding.pop(pod, None)
