"""A cluster's name service on one machine, so HAProxy runs the gateway configuration exactly as shipped.

The shipped configuration names servers and peers by their cluster DNS names
(`<server>-gateway.<namespace>.svc.cluster.local`) and finds its resolver in /etc/resolv.conf, as in a
pod. Here a small DNS server (dnslib) answers those names with loopback addresses, and HAProxy runs in
a private mount namespace (`unshare --mount`) whose /etc/resolv.conf points at it: nothing of the
machine changes, and not one byte of the configuration. Needs root (binding port 53, mounting), as
CI and these machines have.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

# A loopback address of its own, away from any local resolver on 127.0.0.53.
DNS_ADDRESS = "127.0.0.153"
TTL = 1


class Records(BaseResolver):  # type: ignore[misc]
    """A records by name; the test changes them as kube-dns would when pods come and go."""

    def __init__(self, records: Mapping[str, Sequence[str]]) -> None:
        self._lock = threading.Lock()
        self._records = {name.rstrip("."): list(addresses) for name, addresses in records.items()}

    def set(self, name: str, addresses: Sequence[str]) -> None:
        with self._lock:
            self._records[name.rstrip(".")] = list(addresses)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        with self._lock:
            addresses = self._records.get(name)
        if addresses is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype in (QTYPE.A, QTYPE.ANY):
            for address in addresses:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=TTL))
        return reply


def require_sandbox_tools() -> None:
    """Fail, never skip: the gateway's tests are what proves the shipped configuration."""
    if os.geteuid() != 0:
        pytest.fail("the gateway sandbox needs root (a DNS server on port 53 and a private mount namespace)")
    for tool in ("unshare", "mount", "haproxy"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed")


@contextmanager
def cluster_dns(records: Mapping[str, Sequence[str]], workdir: Path) -> Iterator[tuple[Records, Path]]:
    """Serve records on DNS_ADDRESS:53 (UDP and TCP); yield them and a resolv.conf that points there."""
    require_sandbox_tools()
    resolver = Records(records)
    quiet = DNSLogger(logf=lambda _: None)
    servers = [
        DNSServer(resolver, address=DNS_ADDRESS, port=53, tcp=tcp, logger=quiet) for tcp in (False, True)
    ]
    for server in servers:
        server.start_thread()
    resolv_conf = workdir / "resolv.conf"
    resolv_conf.write_text(f"nameserver {DNS_ADDRESS}\noptions timeout:1 attempts:2\n", encoding="utf-8")
    try:
        yield resolver, resolv_conf
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()


def in_sandbox(resolv_conf: Path, command: Sequence[str]) -> list[str]:
    """command, run with resolv_conf as its /etc/resolv.conf and the rest of the machine as it is."""
    return [
        *("unshare", "--mount", "--propagation", "private", "sh", "-c"),
        'mount --bind "$0" /etc/resolv.conf && exec "$@"',
        str(resolv_conf),
        *command,
    ]


def run_in_sandbox(
    resolv_conf: Path, command: Sequence[str], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        in_sandbox(resolv_conf, command), capture_output=True, text=True, env=dict(env), timeout=60
    )
