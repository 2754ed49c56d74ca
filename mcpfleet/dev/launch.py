"""Which servers of a fleet can run on this machine, and the exact command for each: decided from the
catalog's `packages` (as the official MCP Registry's server.json describes them), without starting
anything, so `mcpfleet dev --dry-run` shows the same plan that a real run carries out.

A server is told its local address the way its catalog entry tells it in the cluster:
- an environment variable or argument whose value is the catalog's `transport.port` gets the local port,
  and `0.0.0.0` (every interface, right in a pod) becomes 127.0.0.1;
- options of the container `args` that carry the port or `0.0.0.0` (`--port 8080`, `--host 0.0.0.0`) are
  added to the package's command with the local values, unless its `packageArguments` already set them;
- with neither, the server listens on `transport.port` itself, which must then be free.

A server is skipped, with its reason, when it is known not to run here: a secret it needs is not set, no
runtime for its packages, an argument naming a path of its container that this machine lacks, or it reads
the Kubernetes API (`kubernetesAccess`) and no kubeconfig with a current context is at hand.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mcpfleet.catalog.models import Package, Server
from mcpfleet.fleet import Fleet, FleetServer

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
# The bridge the catalog names for stdio servers: its image, whose tags follow the npm package's
# versions (`3.4.3`, and `3.4.3-uvx` with uv added to the image).
SUPERGATEWAY_IMAGE = "docker.io/supercorp/supergateway"
SUPERGATEWAY_PACKAGE = "supergateway"
SUPERGATEWAY_TAG = re.compile(r"^(?P<version>[0-9]+\.[0-9]+\.[0-9]+)(-uvx)?$")
BRIDGE_HEALTH_PATH = "/healthz"
KUBECONFIG = "KUBECONFIG"
# What a server inherits from the shell that runs `mcpfleet dev`: what runtimes need to find themselves,
# their caches and proxies. Nothing else, so one server never sees another's secrets or the user's own.
INHERITED = re.compile(
    r"^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|TERM|XDG_[A-Z_]+"
    r"|(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE|NODE_EXTRA_CA_CERTS"
    r"|(npm|NPM)_config_[A-Za-z_]+|UV_[A-Z_]+|PIP_[A-Z_]+)$"
)


@dataclass(frozen=True)
class Launch:
    """One server to start: its command, environment additions and the local port it will serve."""

    server: str
    transport: str
    argv: list[str]
    env: dict[str, str]
    port: int
    path: str
    secrets: list[str]
    notes: list[str] = field(default_factory=list)
    """What differs from the cluster, for the person reading the plan."""
    inherited: list[str] = field(default_factory=list)
    """Variables of the shell this server gets besides the basics (KUBECONFIG), by name."""

    def describe(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Skip:
    """A server that cannot run here, and why."""

    server: str
    reason: str


@dataclass(frozen=True)
class Tools:
    """Where the runtimes are; `mcpfleet dev` looks them up once, tests pass their own."""

    npx: str | None
    uvx: str | None
    node: Path | None
    """A Node binary to run npm packages with (first on PATH), instead of the one npx finds."""
    python: str = sys.executable

    @classmethod
    def detect(cls, node: Path | None = None) -> Tools:
        return cls(npx=shutil.which("npx"), uvx=shutil.which("uvx"), node=node)


def base_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in environ.items() if INHERITED.match(key)}


def plan_launches(
    fleet: Fleet,
    tools: Tools,
    environ: Mapping[str, str],
    allocate_port: Callable[[], int],
    port_free: Callable[[int], bool],
) -> tuple[list[Launch], list[Skip]]:
    """Decide, for every server of the fleet, how it starts here or why it cannot."""
    launches: list[Launch] = []
    skips: list[Skip] = []
    for server in fleet.servers:
        outcome = _plan(server, tools, environ, allocate_port, port_free)
        if isinstance(outcome, Launch):
            launches.append(outcome)
        else:
            skips.append(outcome)
    return launches, skips


def _plan(
    fleet_server: FleetServer,
    tools: Tools,
    environ: Mapping[str, str],
    allocate_port: Callable[[], int],
    port_free: Callable[[int], bool],
) -> Launch | Skip:
    spec = fleet_server.spec
    name = spec.name
    missing = [secret.env for secret in spec.secrets if not environ.get(secret.env)]
    if missing:
        return Skip(
            name, f"needs secret{'s' if len(missing) > 1 else ''} {', '.join(missing)} (not set here)"
        )
    if not spec.packages:
        return Skip(
            name,
            f"no published package in its catalog entry; it runs only from its image {spec.image.reference}",
        )
    package, command, problem = _package_command(spec.packages, tools)
    if package is None or command is None:
        return Skip(name, problem)
    missing_path = _container_path(package, spec)
    if missing_path is not None:
        return Skip(name, f"argument {missing_path} is a path in its container, which does not exist here")
    kube = _kubeconfig(spec, environ)
    if isinstance(kube, Skip):
        return kube

    notes: list[str] = []
    inherited: list[str] = []
    if kube is not None:
        notes.append(kube)
        if environ.get(KUBECONFIG):
            inherited.append(KUBECONFIG)
    transport = spec.transport
    if transport.type == "stdio":
        bridge = _bridge(spec, tools)
        if isinstance(bridge, str):
            return Skip(name, bridge)
        port = allocate_port()
        argv = [
            *bridge,
            "--stdio",
            shlex.join(command),
            "--outputTransport",
            "streamableHttp",
            "--port",
            str(port),
            "--streamableHttpPath",
            transport.path,
            "--healthEndpoint",
            BRIDGE_HEALTH_PATH,
        ]
        if not spec.stateless:
            argv.append("--stateful")
        notes.append(
            "stdio behind the Supergateway bridge, which listens on every interface (it has no host setting)"
        )
        env = dict(fleet_server.env)
        return _launch(fleet_server, tools, package, argv, env, port, transport.path, notes, inherited)

    catalog_port = str(transport.port)
    env = dict(fleet_server.env)
    carried = catalog_port in env.values() or any(_value_of(arg) == catalog_port for arg in command)
    extra = _listen_options(spec, command)
    if carried or any(value == catalog_port for _, value in extra):
        port = allocate_port()
    else:
        port = transport.port
        if not port_free(port):
            return Skip(
                name,
                f"listens on port {port} (its catalog entry gives no way to move it), which is in use here",
            )
        notes.append(f"listens on its fixed port {port}")
    local = {catalog_port: str(port), ALL_INTERFACES: LOOPBACK}
    argv = [_substitute(arg, local) for arg in command]
    for option, value in extra:
        argv += [option, local.get(value, value)]
    env = {key: local.get(value, value) for key, value in env.items()}
    if env != fleet_server.env or extra or argv != command:
        notes.append(f"told to listen on {LOOPBACK}:{port} (the catalog says port {catalog_port})")
    return _launch(fleet_server, tools, package, argv, env, port, transport.path, notes, inherited)


def _launch(
    fleet_server: FleetServer,
    tools: Tools,
    package: Package,
    argv: list[str],
    env: dict[str, str],
    port: int,
    path: str,
    notes: list[str],
    inherited: list[str],
) -> Launch:
    spec = fleet_server.spec
    if tools.node is not None and (package.registry_type == "npm" or argv[:1] == [tools.npx]):
        notes.append(f"npm packages run with {tools.node}")
    if package.registry_type == "pypi" and package.runtime_hint == "python":
        notes.append(
            f"runs in this Python ({tools.python}), which has {package.identifier} {package.version}"
        )
    return Launch(
        server=spec.name,
        transport=spec.transport.type,
        argv=argv,
        env=env,
        port=port,
        path=path,
        secrets=[secret.env for secret in spec.secrets],
        notes=notes,
        inherited=inherited,
    )


def _container_path(package: Package, spec: Server) -> str | None:
    """The first absolute path among the package's arguments (`/data`, `--root=/data`) that does not exist
    here: the container's own paths (a mounted volume) that the server would fail to open. The entry's
    MCP path (`/mcp`) is a URL path, not a file."""
    for argument in package.package_arguments:
        value = argument.split("=", 1)[1] if argument.startswith("-") and "=" in argument else argument
        if not value.startswith("/") or value.startswith("//") or value == spec.transport.path:
            continue
        if not Path(value).exists():
            return value
    return None


def _kubeconfig(spec: Server, environ: Mapping[str, str]) -> str | Skip | None:
    """For a server that reads the Kubernetes API: a note on the cluster it reads here, or why it cannot
    run (it would print an error and its whole usage). None for every other server.

    Like kubectl: the files of KUBECONFIG (merged, the first current-context wins) when it is set, else
    ~/.kube/config."""
    if spec.kubernetes_access is None:
        return None
    name = spec.name
    listed = environ.get(KUBECONFIG, "")
    if listed:
        files = [Path(part) for part in listed.split(os.pathsep) if part]
        shown = f"{KUBECONFIG}={listed}"
    else:
        home = environ.get("HOME")
        files = [Path(home) / ".kube" / "config"] if home else []
        shown = "~/.kube/config"
    present = [path for path in files if path.is_file()]
    if not present:
        where = (
            f"none of the files of {shown} exists"
            if listed
            else f"{KUBECONFIG} is unset and {shown} is missing"
        )
        return Skip(name, f"reads the Kubernetes API and has no kubeconfig here ({where})")
    context = None
    for path in present:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return Skip(name, f"reads the Kubernetes API and its kubeconfig {path} does not read as YAML")
        if isinstance(document, dict) and document.get("current-context"):
            context = str(document["current-context"])
            break
    if context is None:
        return Skip(
            name,
            f"reads the Kubernetes API and {shown} sets no current context (kubectl config use-context NAME)",
        )
    return (
        f"reads the cluster of context {context} ({shown}) with that context's rights,"
        " not only what its kubernetesAccess grants in a cluster"
    )


def _package_command(
    packages: Sequence[Package], tools: Tools
) -> tuple[Package | None, list[str] | None, str]:
    """The first package this machine can run, as a command line; else the reasons none can."""
    reasons = []
    for package in packages:
        ident, version, args = package.identifier, package.version, list(package.package_arguments)
        if package.registry_type == "npm":
            if tools.npx is None:
                reasons.append(f"npm package {ident}@{version} needs npx (Node.js and npm), not found")
                continue
            return package, [tools.npx, "-y", f"{ident}@{version}", *args], ""
        if package.registry_type == "pypi":
            if package.runtime_hint == "python":
                installed = _installed_version(ident)
                if installed != version:
                    found = f"{installed} is" if installed else "it is not"
                    reasons.append(
                        f"pypi package {ident}=={version} runs from this Python, but {found} installed here"
                    )
                    continue
                return package, [tools.python, *args], ""
            if tools.uvx is None:
                reasons.append(f"pypi package {ident}=={version} needs uvx (pip install uv), not found")
                continue
            return package, [tools.uvx, f"{ident}=={version}", *args], ""
        reasons.append(f"{package.registry_type} package {ident}:{version} needs a container engine")
    return None, None, "; ".join(reasons)


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _bridge(spec: Server, tools: Tools) -> list[str] | str:
    """The bridge's command line, or why there is none: the catalog names it by the stdio server's image."""
    image = spec.image
    if image.repository != SUPERGATEWAY_IMAGE:
        return f"stdio server on image {image.repository}, not the Supergateway bridge: no bridge to run it"
    match = SUPERGATEWAY_TAG.match(image.tag or "")
    if match is None:
        return f"Supergateway image tag {image.tag!r} names no npm release of the bridge"
    if tools.npx is None:
        return "the Supergateway bridge is an npm package and needs npx (Node.js and npm), not found"
    return [tools.npx, "-y", f"{SUPERGATEWAY_PACKAGE}@{match['version']}"]


def _value_of(arg: str) -> str:
    return arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg


def _substitute(arg: str, local: Mapping[str, str]) -> str:
    if arg.startswith("-") and "=" in arg:
        option, value = arg.split("=", 1)
        return f"{option}={local.get(value, value)}"
    return local.get(arg, arg)


def _listen_options(spec: Server, command: Sequence[str]) -> list[tuple[str, str]]:
    """(option, catalog value) pairs of the container args that set the port or bind every interface,
    and that the package's own command does not set already."""
    wanted = {str(spec.transport.port), ALL_INTERFACES}
    present = {arg.split("=", 1)[0] for arg in command if arg.startswith("-")}
    found: list[tuple[str, str]] = []
    args = spec.args
    for index, arg in enumerate(args):
        if arg.startswith("-") and "=" in arg:
            option, value = arg.split("=", 1)
        elif index > 0 and args[index - 1].startswith("-"):
            option, value = args[index - 1], arg
        else:
            continue
        if value in wanted and option not in present:
            found.append((option, value))
    return found


def child_environment(launch: Launch, environ: Mapping[str, str], tools: Tools) -> dict[str, str]:
    """The whole environment of one server: the inherited basics, its declared secrets, its settings."""
    env = base_environment(environ)
    env.update({name: environ[name] for name in launch.secrets if name in environ})
    env.update({name: environ[name] for name in launch.inherited if name in environ})
    env.update(launch.env)
    if tools.node is not None:
        env["PATH"] = os.pathsep.join([str(tools.node.parent), env.get("PATH", "")])
    return env
