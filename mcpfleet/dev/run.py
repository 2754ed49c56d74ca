"""`mcpfleet dev`: the fleet of one environment on this machine, behind the gateway, until Ctrl-C.

Servers start in parallel, each in its own process group; the MCP router starts once they listen, and
HAProxy, which forwards to it, once the router is healthy: client -> HAProxy -> router -> servers, as in
a cluster. Each server's outcome is a line of its own as it comes (ready, or failed with the lines of
its output that say why); once everything is up, the run prints the gateway's endpoints (each server's,
and the fleet endpoint `/mcp` over all of them), the exact `mcpfleet verify` command that checks them
through it, and how to hand the fleet endpoint's token to a client. SIGINT or SIGTERM stops HAProxy first
(no new requests), then the router, then every server group, and nothing is left running.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from components.gateway.config import Upstream
from mcpfleet.dev import gateway, process, router
from mcpfleet.dev.launch import Launch, Skip, Tools, base_environment, child_environment, plan_launches
from mcpfleet.fleet import FLEET_PATH, Fleet
from mcpfleet.router.local import healthy
from mcpfleet.router.names import SEPARATOR

LOOPBACK = "127.0.0.1"
HAPROXY_START_SECONDS = 15.0
ROUTER_START_SECONDS = 30.0
# npx and uvx fetch a package on its first start.
DEFAULT_START_SECONDS = 180.0
POLL_SECONDS = 0.5

Echo = Callable[[str], None]


class DevFailed(Exception):
    """The run cannot go on; everything it started has been stopped."""


class Watch(Protocol):
    """Shows the waits while they last (the CLI draws them on a terminal); outcomes are echoed anyway."""

    def begin(self, name: str, waiting_for: str) -> None:
        """Waiting for name starts: waiting_for says what it must do to be ready."""

    def end(self, name: str) -> None:
        """name is ready or has failed (its line is echoed)."""

    def close(self) -> None:
        """No more waits: whatever was drawn goes away. Called more than once."""


class Unwatched:
    """No display: the echoed lines are all there is (off a terminal, or in tests)."""

    def begin(self, name: str, waiting_for: str) -> None:
        pass

    def end(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass


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
    if started:
        echo(f"  {gateway.fleet_endpoint(fleet, plan.gateway_port)}  (fleet endpoint: every server's tools)")


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
    program: Sequence[str] = ("mcpfleet",),
    inputs: Sequence[str] = (),
    watch: Watch | None = None,
) -> None:
    """Start what plan says, serve until SIGINT/SIGTERM, stop everything. DevFailed if it cannot start.

    program runs mcpfleet in this shell, and inputs are the options that name the catalog and stacks this
    run read: with them the run prints the `verify` command for its own gateway."""
    watch = watch or Unwatched()
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
        servers = _start_servers(plan, tools, environ, run_dir, start_timeout, stop, echo, watch, children)
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
        watch.begin("router", "its health check")
        _wait_healthy(router_child, router_files, ROUTER_START_SECONDS, stop)
        watch.end("router")
        if stop.event.is_set():
            return
        haproxy = process.start(
            "haproxy",
            [plan.haproxy, "-f", str(files.config), "-db"],
            logs / "haproxy.log",
            env=files.env,
        )
        children.append(haproxy)
        watch.begin("gateway", f"HAProxy on {LOOPBACK}:{plan.gateway_port}")
        try:
            process.wait_for_port(haproxy, LOOPBACK, plan.gateway_port, HAPROXY_START_SECONDS)
        except process.ProcessFailed as exc:
            raise DevFailed(str(exc)) from None
        watch.end("gateway")
        watch.close()
        _print_ready(plan, files, haproxy, metrics_port, router_child, router_files, servers, run_dir, echo)
        echo(VERIFY_HEADING)
        echo(f"  {shlex.join(verify_command(program, inputs, plan, files))}")
        unified = gateway.fleet_endpoint(plan.fleet, plan.gateway_port)
        echo(f"connect an MCP client to {unified} with this token:")
        echo(f"  {token_export(files.tokens)}")
        echo("press Ctrl-C to stop")
        _serve(stop, [haproxy, router_child], servers, echo)
    finally:
        watch.close()
        _stop_all(children, echo)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


VERIFY_HEADING = "check every server and the fleet endpoint through this gateway:"
TOKEN_VARIABLE = "MCP_TOKEN"


def token_export(tokens: Path, python: str = sys.executable) -> str:
    """A shell line that puts the fleet endpoint's token (the `/mcp` entry of tokens) in $MCP_TOKEN."""
    read = f"import json, sys; print(json.load(open(sys.argv[1]))[{json.dumps(FLEET_PATH)}])"
    return f'export {TOKEN_VARIABLE}="$({shlex.join([python, "-c", read, str(tokens)])})"'


def verify_command(
    program: Sequence[str], inputs: Sequence[str], plan: Plan, files: gateway.GatewayFiles
) -> list[str]:
    """`mcpfleet verify` of this run's fleet through its gateway, with its tokens (the fleet endpoint's
    among them, so it checks `/mcp` too) and (with TLS) its self-signed certificate, then the options
    naming the catalog and stacks it read."""
    command = [*program, "verify", "--env", plan.fleet.environment]
    command += [
        "--endpoint",
        gateway.base_url(plan.fleet, plan.gateway_port),
        "--token-file",
        str(files.tokens),
    ]
    if files.certificate is not None:
        command += ["--cacert", str(files.certificate)]
    return [*command, *inputs]


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
    watch: Watch,
    children: list[process.Child],
) -> list[process.Child]:
    """Start every server at once and wait for them together: each one's line comes when it is ready or
    has failed, whatever the others do. A failed server is stopped and left out; the run goes on with the
    rest."""
    for launch in plan.launches:
        child = process.start(
            launch.server,
            launch.argv,
            run_dir / "logs" / f"{launch.server}.log",
            env=child_environment(launch, environ, tools),
            port=launch.port,
        )
        children.append(child)
        watch.begin(launch.server, f"{LOOPBACK}:{launch.port}")
    servers = list(children)
    started = time.monotonic()
    deadline = started + timeout
    pending = list(servers)
    ready: set[str] = set()
    while pending and not stop.event.is_set():
        for child in list(pending):
            port = child.port
            assert port is not None
            failure = None
            if not child.running():
                what = f"exited with status {child.process.returncode} before serving {LOOPBACK}:{port}"
                failure = child.failure(what)
            elif process.port_open(LOOPBACK, port):
                pending.remove(child)
                ready.add(child.name)
                watch.end(child.name)
                echo(f"ready: {child.name} on {LOOPBACK}:{port} after {time.monotonic() - started:.1f}s")
            elif time.monotonic() > deadline:
                failure = child.failure(f"did not listen on {LOOPBACK}:{port} within {timeout:.0f}s")
            if failure is not None:
                pending.remove(child)
                watch.end(child.name)
                echo(f"failed: {failure}")
                process.stop(child)
                children.remove(child)
        if pending:
            # Ctrl-C during a slow first download ends the wait at once.
            stop.event.wait(0.1)
    if not ready and not stop.event.is_set():
        raise DevFailed("no server started (see the failures above)")
    return [child for child in servers if child.name in ready]


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
        f"  fleet endpoint, every server's tools as <server>{SEPARATOR}<tool>:"
        f" {gateway.fleet_endpoint(plan.fleet, plan.gateway_port)}"
    )
    echo(
        f"router on {LOOPBACK}:{router_files.port} (pid {router_child.process.pid});"
        f" metrics: {router_files.metrics_url}; audit records: {logs / router.AUDIT_FILE}"
    )
    echo(f'bearer tokens, one per server and "{FLEET_PATH}" for the fleet endpoint: {files.tokens}')
    if files.certificate is not None:
        echo(f"TLS certificate to trust (self-signed): {files.certificate}")
    echo(f"gateway metrics: {gateway.metrics_url(metrics_port)}; logs: {logs}")


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
