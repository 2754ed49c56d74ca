"""A cluster's name service on one machine, so HAProxy runs the gateway configuration exactly as shipped;
and the pytest plugin that runs the tests using it (marker `sandbox`) where that service can run.

The shipped configuration names servers and peers by their cluster DNS names
(`<server>-gateway.<namespace>.svc.cluster.local`) and finds its resolver in /etc/resolv.conf, as in a
pod. Here a small DNS server (dnslib) answers those names with loopback addresses on port 53 (HAProxy's
`parse-resolv-conf` and glibc know no other port), and HAProxy and the routers run in a private mount
namespace (`unshare --mount`) whose /etc/resolv.conf points at it: nothing of the machine changes, and
not one byte of the configuration.

Port 53 and the mount need root. Without root, pytest hands the tests marked `sandbox` to a child session
(`python -m tests.sandbox`) that is root of a user namespace of its own, with a network namespace of its
own (loopback only), as unprivileged user namespaces allow (on by default on Debian 11+ and Ubuntu), and
reports them as its own; the rest of the suite runs as the user, on the machine's network.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

# A loopback address of its own, away from any local resolver on 127.0.0.53.
DNS_ADDRESS = "127.0.0.153"
TTL = 1
MARK = "sandbox"
# Set in the child session: "entered", or why its namespaces could not be made.
STATE_ENV = "MCPFLEET_SANDBOX"
ENTERED = "entered"
UNAVAILABLE = "unavailable: "
# What decides whether a user may make user namespaces, by kernel and distribution.
USERNS_SYSCTLS = (
    "kernel/unprivileged_userns_clone",  # Debian's own switch (kernels before 6.x had it off by default)
    "user/max_user_namespaces",  # 0 forbids them
    "kernel/apparmor_restrict_unprivileged_userns",  # Ubuntu 23.10+: 1 denies them capabilities
)
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFREQ = struct.Struct("16sH22x")  # struct ifreq: the name, then ifr_flags in a 24-byte union


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


# --- the namespaces --------------------------------------------------------------------------------------


class Unavailable(Exception):
    """This process could not be made root of a private user and network namespace; the message says why
    and what the machine needs."""


def userns_settings() -> str:
    """The machine's settings that allow or forbid unprivileged user namespaces, as `name=value`."""
    found = []
    for name in USERNS_SYSCTLS:
        try:
            value = (Path("/proc/sys") / name).read_text(encoding="ascii").strip()
        except OSError:
            continue
        found.append(f"{name.replace('/', '.')}={value}")
    return ", ".join(found) or "none of " + ", ".join(n.replace("/", ".") for n in USERNS_SYSCTLS)


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _loopback_up() -> None:
    """`ip link set lo up`, without iproute2: a new network namespace's loopback starts down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        _, flags = IFREQ.unpack(fcntl.ioctl(sock, SIOCGIFFLAGS, IFREQ.pack(b"lo", 0)))
        fcntl.ioctl(sock, SIOCSIFFLAGS, IFREQ.pack(b"lo", flags | IFF_UP))


def enter_namespaces() -> None:
    """Make this (single-threaded) process root of a new user namespace, its real user and group mapped to
    root, with a new network namespace holding only loopback. Processes it starts run as that root, so
    `unshare --mount` and binding port 53 work as with real root; files keep their real owner."""
    uid, gid = os.getuid(), os.getgid()
    try:
        _unshare(CLONE_NEWUSER | CLONE_NEWNET)
    except OSError as error:
        hint = (
            " (the process has more than one thread)"
            if error.errno == errno.EINVAL and threading.active_count() > 1
            else ""
        )
        raise Unavailable(
            f"no private user namespace for the gateway sandbox: unshare failed: {error.strerror}{hint}."
            f" Running the gateway tests without root needs unprivileged user namespaces (on by default on"
            f" Debian 11+ and Ubuntu; this machine: {userns_settings()}): enable them"
            " (kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0,"
            " kernel.apparmor_restrict_unprivileged_userns=0), or run the tests as root"
        ) from None
    try:
        # setgroups must be denied before an unprivileged process may write its gid_map.
        Path("/proc/self/setgroups").write_text("deny", encoding="ascii")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1", encoding="ascii")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1", encoding="ascii")
        _loopback_up()
    except OSError as error:
        raise Unavailable(
            f"a private user namespace was made but not set up ({error}); this machine: {userns_settings()}"
        ) from None


def require_sandbox_tools() -> None:
    """Fail, never skip: the gateway's tests are what proves the shipped configuration."""
    if _current_test_unmarked:
        pytest.fail(
            f"{_current_test_unmarked} uses the gateway sandbox but is not marked `{MARK}`: without root it"
            f" can run only in the sandbox's session (add `pytestmark = pytest.mark.{MARK}` to its module)"
        )
    if os.geteuid() != 0:
        state = os.environ.get(STATE_ENV, "")
        if state.startswith(UNAVAILABLE):
            pytest.fail(state.removeprefix(UNAVAILABLE), pytrace=False)
        pytest.fail(
            "the gateway sandbox needs root, or the private user namespace pytest enters for tests marked"
            f" `{MARK}` when run without root (this run has neither: was the tests.sandbox plugin disabled?)"
        )
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


# --- the pytest plugin (tests/conftest.py loads it) ---------------------------------------------------------
#
# Without root, the session runs the tests marked `sandbox` first, by handing all of them, at the first
# one, to a child session in the namespaces; the child sends back its reports
# (pytest's own serialized form, as pytest-xdist's workers do) and this session reports them as its own:
# one progress line, one summary, one exit code.

# The node id of the running test when it lacks the mark (the sandbox refuses it, even as root: the
# run without root would not give it one).
_current_test_unmarked = ""
DELEGATED = pytest.StashKey[list[str]]()
CHILD_RAN = pytest.StashKey[bool]()
CHILD_PROBLEM = pytest.StashKey[str]()
# In the child: the file descriptor its events go to, one JSON object a line.
EVENTS_ENV = "MCPFLEET_SANDBOX_EVENTS"
# In the child: that file, and its configuration (to serialize its reports).
_child: tuple[TextIO, pytest.Config] | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _child
    config.addinivalue_line(
        "markers",
        f"{MARK}: uses the gateway sandbox (tests/sandbox.py); without root these run in a child session"
        " inside a private user and network namespace",
    )
    descriptor = os.environ.pop(EVENTS_ENV, None)  # popped: a pytest the tests start is not the child
    if descriptor is not None:
        _child = (os.fdopen(int(descriptor), "w", encoding="utf-8", buffering=1), config)


def delegates(config: pytest.Config) -> bool:
    """Whether this session hands its sandbox tests to a child session: only without root, and not in the
    child itself."""
    return os.geteuid() != 0 and STATE_ENV not in os.environ


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without root, the sandbox tests go first: none of this session's fixtures is set up when they are
    handed over (pytest tears a test's modules down by the next test it runs)."""
    if not delegates(config):
        return
    delegated = [item for item in items if item.get_closest_marker(MARK)]
    if delegated:
        items[:] = [*delegated, *(item for item in items if not item.get_closest_marker(MARK))]
        config.stash[DELEGATED] = [item.nodeid for item in delegated]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    delegated = item.config.stash.get(DELEGATED, [])
    if not delegated or not item.get_closest_marker(MARK):
        return None
    if not item.config.stash.get(CHILD_RAN, False):
        item.config.stash[CHILD_RAN] = True
        run_child(item.session, delegated)
    return True  # run (or stopped short) in the child


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _current_test_unmarked
    _current_test_unmarked = "" if item.get_closest_marker(MARK) else item.nodeid


def child_argv(config: pytest.Config, nodeids: Sequence[str]) -> list[str]:
    """The child session: exactly these tests, with this session's options for what its reports hold and
    when to stop."""
    option = config.option
    argv = [
        *(sys.executable, "-m", "tests.sandbox", "-p", "no:cacheprovider"),
        f"--tb={option.tbstyle}",
        f"--capture={option.capture}",
    ]
    if option.showlocals:
        argv.append("--showlocals")
    if option.maxfail:
        argv.append(f"--maxfail={option.maxfail}")
    if option.basetemp:  # beside this session's, which pytest empties when it first uses it
        basetemp = Path(option.basetemp).resolve()
        argv.append(f"--basetemp={basetemp.with_name(basetemp.name + '-sandbox')}")
    return [*argv, *nodeids]


def run_child(session: pytest.Session, nodeids: Sequence[str]) -> None:
    """The child session; its terminal output is kept out of sight unless it ends without running its
    tests (a usage or internal error), since this session reports each test."""
    config = session.config
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(
            f"{len(nodeids)} tests marked {MARK}: run in a child session, root of a private user and network"
            " namespace (this session is not root)"
        )
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as output:
        child = subprocess.Popen(
            child_argv(config, nodeids),
            cwd=config.rootpath,
            env={**os.environ, EVENTS_ENV: str(write_end)},
            pass_fds=(write_end,),
            stdout=output,
        )
        os.close(write_end)
        with os.fdopen(read_end, encoding="utf-8") as events:
            for line in events:
                replay(config, json.loads(line))
        code = child.wait()
        if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return
        output.seek(0)
        said = output.read()
    session.testsfailed += 1
    problem = f"the child session for the tests marked {MARK} ended with exit code {code}"
    config.stash[CHILD_PROBLEM] = problem
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(f"{problem}:\n{said}", red=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    problem = config.stash.get(CHILD_PROBLEM, None)
    if problem is not None:
        terminalreporter.write_line(f"{problem} (its output is above)", red=True)


def replay(config: pytest.Config, event: dict[str, Any]) -> None:
    """One of the child's events, reported by this session as if its own test had run."""
    hook = config.hook
    kind = event["event"]
    if kind in ("start", "finish"):
        location = tuple(event["location"])
        call = hook.pytest_runtest_logstart if kind == "start" else hook.pytest_runtest_logfinish
        call(nodeid=event["nodeid"], location=location)
        return
    report = hook.pytest_report_from_serializable(config=config, data=event["report"])
    if kind == "collect":
        hook.pytest_collectreport(report=report)
    else:
        hook.pytest_runtest_logreport(report=report)


def _send(event: dict[str, Any]) -> None:
    if _child is not None:
        _child[0].write(json.dumps(event) + "\n")


def _send_report(kind: str, report: pytest.TestReport | pytest.CollectReport) -> None:
    if _child is not None:
        config = _child[1]
        _send(
            {"event": kind, "report": config.hook.pytest_report_to_serializable(config=config, report=report)}
        )


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _send({"event": "start", "nodeid": nodeid, "location": location})


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _send({"event": "finish", "nodeid": nodeid, "location": location})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _send_report("report", report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:  # a module the child could not import fails this session too
        _send_report("collect", report)


def main(argv: Sequence[str]) -> int:
    """`python -m tests.sandbox PYTEST-ARGS`: pytest as root of a private user and network namespace. If
    one cannot be made, the tests still run, and each one using the sandbox fails saying why."""
    try:
        enter_namespaces()
        os.environ[STATE_ENV] = ENTERED
    except Unavailable as error:
        os.environ[STATE_ENV] = UNAVAILABLE + str(error)
    return int(pytest.main(list(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
