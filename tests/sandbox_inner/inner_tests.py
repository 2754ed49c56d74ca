"""The session tests/test_sandbox.py runs without root (copied there as test_inner.py, with a module of
one more test after it): a test on the host, one using the sandbox unmarked, then two marked `sandbox`
(one passes, one fails)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from tests.sandbox import STATE_ENV, cluster_dns, run_in_sandbox

NAME = "notes-gateway.team-a.svc.cluster.local"
# What the router does: glibc's getaddrinfo, through /etc/resolv.conf.
RESOLVE = f"import socket; print(sorted({{a[4][0] for a in socket.getaddrinfo({NAME!r}, 80, type=1)}}))"


def test_on_the_host_as_the_user() -> None:
    assert os.geteuid() != 0
    assert STATE_ENV not in os.environ


def test_unmarked_use_of_the_sandbox(tmp_path: Path) -> None:
    with cluster_dns({}, tmp_path):
        pass


@pytest.mark.sandbox
def test_in_the_namespace_a_sandboxed_command_resolves_through_port_53(tmp_path: Path) -> None:
    assert os.geteuid() == 0 and os.environ[STATE_ENV] == "entered"
    with cluster_dns({NAME: ["127.0.0.31", "127.0.0.32"]}, tmp_path) as (records, resolv_conf):
        first = run_in_sandbox(resolv_conf, [sys.executable, "-c", RESOLVE], os.environ)
        records.set(NAME, ["127.0.0.33"])
        second = run_in_sandbox(resolv_conf, [sys.executable, "-c", RESOLVE], os.environ)
        seen = run_in_sandbox(resolv_conf, ["cat", "/etc/resolv.conf"], os.environ)
    assert (first.returncode, first.stdout) == (0, "['127.0.0.31', '127.0.0.32']\n"), first.stderr
    assert (second.returncode, second.stdout) == (0, "['127.0.0.33']\n"), second.stderr
    assert seen.stdout == resolv_conf.read_text()
    # Only the sandboxed commands saw it: this process's resolver is the machine's.
    assert Path("/etc/resolv.conf").read_text() != resolv_conf.read_text()


@pytest.mark.sandbox
def test_a_failure_in_the_namespace() -> None:
    assert socket.gethostname() == "never", "failed inside the namespace"
