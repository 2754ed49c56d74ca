"""`mcpfleet dev`: the fleet of one environment on this machine, behind the gateway, until Ctrl-C.

Servers start in parallel, each in its own process group; the MCP router starts once they listen, and
HAProxy, which forwards to it, once the router is healthy: client -> HAProxy -> router -> servers, as in
a cluster. SIGINT or SIGTERM stops HAProxy first (no new requests), then the router, then every server
group, and nothing is left running.
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from components.gateway.config import Upstream
from mcpfleet.dev import gateway, process, router
from mcpfleet.dev.launch import Launch, Skip, Tools, base_environment, child_environment, plan_launches
from mcpfleet.fleet import Fleet
from mcpfleet.router.local import healthy

LOOPBACK = "127.0.0.1"
HAPROXY_START_SECONDS = 15.0
ROUTER_START_SECONDS = 30.0
# npx and uvx fetch a package on its first start.
DEFAULT_START_SECONDS = 180.0
POLL_SECONDS = 0.5

Echo = Callable[[str], None]


class DevFailed(Exception):
    """The run cannot go on; everything it started has been stopped."""


@dataclass(frozen=True)
class Plan:
    fleet: Fleet
    launches: list[Launch]
    skips: list[Skip]
    haproxy: str | None
    gateway_port: int


def make_plan(fleet: Fleet, tools: Tools, environ: Mapping[str, str], gateway_port: int) -> Plan:
    launches, skips = plan_launches(
        fleet,
        tools,
        environ,
        allocate_port=lambda: process.free_port(LOOPBACK),
        port_free=lambda port: not process.port_open(LOOPBACK, port) and port != gateway_port,
    )
    return Plan(fleet, launches, skips, shutil.which("haproxy"), gateway_port)


def print_plan(plan: Plan, echo: Echo, dry_run: bool) -> None:
    fleet = plan.fleet
    verb = "would start" if dry_run else "starting"
    echo(f"{fleet.environment}: {len(fleet.servers)} servers enabled; {len(plan.launches)} {verb} here")
    for launch in plan.launches:
        echo(f"  {launch.server}  ({launch.transport}) on {LOOPBACK}:{launch.port}{launch.path}")
        echo(f"    $ {launch.describe()}")
        settings = sorted(launch.env)
        if settings:
            echo(f"    settings: {' '.join(f'{key}={launch.env[key]}' for key in settings)}")
        if launch.secrets:
            echo(f"    secrets from this shell: {', '.join(launch.secrets)}")
        for note in launch.notes:
            echo(f"    note: {note}")
    if plan.skips:
        echo(f"skipped ({len(plan.skips)}):")
        for skip in plan.skips:
            echo(f"  {skip.server}: {skip.reason}")
    where = plan.haproxy or "haproxy (not found: apt-get install haproxy)"
    echo(f"gateway: {where} -f <config> -db, on {LOOPBACK}:{plan.gateway_port}")
    echo(f"router: {sys.executable} -m mcpfleet.router, between the gateway and the servers (free ports)")
    started = {launch.server for launch in plan.launches}
    for server in fleet.servers:
        if server.name in started:
            echo(f"  {gateway.endpoint(fleet, server, plan.gateway_port)}")


class _Stop:
    """Set by SIGINT or SIGTERM; the main thread waits on it."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        self.event.set()


def run(
    plan: Plan,
    tools: Tools,
    environ: Mapping[str, str],
    run_dir: Path,
    echo: Echo,
    start_timeout: float = DEFAULT_START_SECONDS,
) -> None:
    """Start what plan says, serve until SIGINT/SIGTERM, stop everything. DevFailed if it cannot start."""
    if plan.haproxy is None:
        raise DevFailed("haproxy not found on PATH (Debian: apt-get install haproxy)")
    if not plan.launches:
        raise DevFailed("none of the fleet's servers can run on this machine (see skipped above)")
    if process.port_open(LOOPBACK, plan.gateway_port):
        raise DevFailed(
            f"gateway port {LOOPBACK}:{plan.gateway_port} is in use (choose another: --gateway-port)"
        )

    stop = _Stop()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[process.Child] = []
    try:
        servers = _start_servers(plan, tools, environ, run_dir, start_timeout, stop, echo, children)
        if stop.event.is_set():
            return
        router_port, router_metrics_port, metrics_port = _free_ports(3, taken={plan.gateway_port})
        upstreams = {child.name: [f"{LOOPBACK}:{child.port}"] for child in servers}
        routers = [Upstream(f"{LOOPBACK}:{router_port}", router_metrics_port)]
        files = gateway.prepare(plan.fleet, routers, plan.gateway_port, run_dir, environ, metrics_port)
        router_files = router.prepare(
            plan.fleet, upstreams, files.issuer_key, run_dir, router_port, router_metrics_port
        )
        logs = run_dir / "logs"
        router_child = process.start(
            "router",
            router_files.argv,
            logs / router.LOG_FILE,
            env=base_environment(environ),
            port=router_port,
            output=logs / router.AUDIT_FILE,
        )
        children.append(router_child)
        _wait_healthy(router_child, router_files, ROUTER_START_SECONDS, stop)
        if stop.event.is_set():
            return
        haproxy = process.start(
            "haproxy",
            [plan.haproxy, "-f", str(files.config), "-db"],
            logs / "haproxy.log",
            env=files.env,
        )
        children.append(haproxy)
        try:
            process.wait_for_port(haproxy, LOOPBACK, plan.gateway_port, HAPROXY_START_SECONDS)
        except process.ProcessFailed as exc:
            raise DevFailed(str(exc)) from None
        _print_ready(plan, files, haproxy, metrics_port, router_child, router_files, servers, run_dir, echo)
        _serve(stop, [haproxy, router_child], servers, echo)
    finally:
        _stop_all(children, echo)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _free_ports(count: int, taken: set[int]) -> list[int]:
    """count distinct free loopback ports, none of them in taken."""
    ports: list[int] = []
    while len(ports) < count:
        port = process.free_port(LOOPBACK)
        if port not in taken and port not in ports:
            ports.append(port)
    return ports


def _wait_healthy(child: process.Child, files: router.RouterFiles, timeout: float, stop: _Stop) -> None:
    """Until the router answers its health check: HAProxy would otherwise route to it before it serves."""
    deadline = time.monotonic() + timeout
    while not stop.event.is_set():
        if not child.running():
            what = f"exited with status {child.process.returncode} before serving {files.port}"
            raise DevFailed(child.failure(what).args[0])
        if healthy(LOOPBACK, files.metrics_port):
            return
        if time.monotonic() > deadline:
            raise DevFailed(child.failure(f"not healthy at {files.health_url} within {timeout:.0f}s").args[0])
        stop.event.wait(0.1)


def _start_servers(
    plan: Plan,
    tools: Tools,
    environ: Mapping[str, str],
    run_dir: Path,
    timeout: float,
    stop: _Stop,
    echo: Echo,
    children: list[process.Child],
) -> list[process.Child]:
    for launch in plan.launches:
        child = process.start(
            launch.server,
            launch.argv,
            run_dir / "logs" / f"{launch.server}.log",
            env=child_environment(launch, environ, tools),
            port=launch.port,
        )
        children.append(child)
    ready: list[process.Child] = []
    for child in list(children):
        assert child.port is not None
        try:
            _wait_ready(child, child.port, timeout, stop)
        except process.ProcessFailed as exc:
            echo(f"failed: {exc}")
            process.stop(child)
            children.remove(child)
            continue
        if stop.event.is_set():
            break
        ready.append(child)
    if not ready and not stop.event.is_set():
        raise DevFailed("no server started (see the failures above)")
    return ready


def _wait_ready(child: process.Child, port: int, timeout: float, stop: _Stop) -> None:
    """Like process.wait_for_port, but Ctrl-C during a slow first download stops the wait at once."""
    deadline = time.monotonic() + timeout
    while not stop.event.is_set():
        if not child.running():
            raise child.failure(f"exited with status {child.process.returncode} before serving {port}")
        if process.port_open(LOOPBACK, port):
            return
        if time.monotonic() > deadline:
            raise child.failure(f"did not listen on {LOOPBACK}:{port} within {timeout:.0f}s")
        stop.event.wait(0.1)


def _print_ready(
    plan: Plan,
    files: gateway.GatewayFiles,
    haproxy: process.Child,
    metrics_port: int,
    router_child: process.Child,
    router_files: router.RouterFiles,
    servers: list[process.Child],
    run_dir: Path,
    echo: Echo,
) -> None:
    started = {child.name for child in servers}
    logs = run_dir / "logs"
    echo(f"gateway on {LOOPBACK}:{plan.gateway_port} (HAProxy pid {haproxy.process.pid})")
    for server in plan.fleet.servers:
        if server.name in started:
            echo(f"  {server.name}: {gateway.endpoint(plan.fleet, server, plan.gateway_port)}")
    echo(
        f"router on {LOOPBACK}:{router_files.port} (pid {router_child.process.pid});"
        f" metrics: {router_files.metrics_url}; audit records: {logs / router.AUDIT_FILE}"
    )
    echo(f"bearer tokens, one per server: {files.tokens}")
    if files.certificate is not None:
        echo(f"TLS certificate to trust (self-signed): {files.certificate}")
    echo(f"gateway metrics: {gateway.metrics_url(metrics_port)}; logs: {logs}")
    echo("press Ctrl-C to stop")


def _serve(stop: _Stop, essential: list[process.Child], servers: list[process.Child], echo: Echo) -> None:
    """Until stopped; the run fails when HAProxy or the router exits, a server's exit is reported."""
    reported: set[str] = set()
    while not stop.event.wait(POLL_SECONDS):
        for child in essential:
            if not child.running():
                raise DevFailed(child.failure(f"exited with status {child.process.returncode}").args[0])
        for child in servers:
            if not child.running() and child.name not in reported:
                reported.add(child.name)
                echo(f"warning: {child.failure(f'exited with status {child.process.returncode}').args[0]}")


def _stop_all(children: list[process.Child], echo: Echo) -> None:
    """HAProxy first (it was started last), then the router, so no request reaches a server that is going
    away."""
    for child in reversed(children):
        process.stop(child)
    if children:
        echo(f"stopped {len(children)} process group{'s' if len(children) != 1 else ''}")
