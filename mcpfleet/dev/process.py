"""Child processes that are stopped whole: each runs in its own process group, so `npx` or `uvx` and the
server they spawn stop together, and nothing outlives the command that started them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
# A group that ignores its stop signal this long is killed: npx and uvx forward SIGTERM at once, and
# servers that drain streams first still finish well within it.
STOP_GRACE_SECONDS = 5.0
POLL_SECONDS = 0.05


class ProcessFailed(Exception):
    """A child exited (or never answered) while it was expected to serve; carries its log's last lines."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's pick). Another process may still take it before
    ours binds it; the caller notices through its readiness wait."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


ERROR_LINE = re.compile(r"\b(error|fatal|cannot|unable|failed|not found|no such|denied)\b", re.IGNORECASE)
# What a failed start shows of its output: a few lines, without what never says why it failed.
MEANINGFUL_LINES = 6
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# npm's update notices and npx's "will be installed" chatter.
_NOISE = re.compile(r"^npm (notice|warn exec)\b")
# A help text's section headings (cobra, click, argparse, commander): what follows is usage until an
# error line; option lines (`  --flag  what it does`) are usage wherever they stand.
_HELP_HEADING = re.compile(
    r"^\s*(usage|options|flags|global flags|examples?|(available )?commands|arguments"
    r"|(positional|optional) arguments)\s*:",
    re.IGNORECASE,
)
_OPTION_LINE = re.compile(r"^\s+-{1,2}[A-Za-z0-9]")


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log, after its first few error lines if they come earlier: a tool that fails on
    start often prints the reason, then pages of usage."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    every = text.splitlines()
    tail = every[-lines:]
    earlier = [line for line in every[: len(every) - len(tail)] if ERROR_LINE.search(line)][:5]
    return "\n".join([*earlier, "...", *tail] if earlier else tail)


@dataclass(frozen=True)
class Excerpt:
    """The lines of an output that say why a program stopped, and whether usage text was left out."""

    lines: list[str]
    usage_left_out: bool


def meaningful_lines(text: str, limit: int = MEANINGFUL_LINES) -> Excerpt:
    """At most limit lines of text that say why it failed: no blank lines, no colour codes, no npm
    notices, no usage text (a CLI that rejects its setup often prints the reason, then its whole help).
    When more remain, the last ones, after the first error line if that comes earlier (the cause)."""
    kept: list[str] = []
    in_help = usage = False
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).rstrip()
        if not line.strip() or _NOISE.match(line):
            continue
        if _HELP_HEADING.match(line):
            in_help = usage = True
            continue
        if _OPTION_LINE.match(line):
            usage = True
            continue
        if in_help and not ERROR_LINE.search(line):
            continue
        in_help = False
        kept.append(line)
    if len(kept) > limit:
        tail = kept[-(limit - 1) :]
        first_error = next((line for line in kept[: -(limit - 1)] if ERROR_LINE.search(line)), None)
        kept = [first_error, "...", *tail] if first_error is not None else kept[-limit:]
    return Excerpt(kept, usage)


@dataclass
class Child:
    """One started command, its process group and the file that collects its stdout and stderr."""

    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes]
    port: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def pgid(self) -> int:
        # start_new_session makes the child a session and group leader: its pid is the group id.
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def failure(self, what: str) -> ProcessFailed:
        """what went wrong, then the few lines of the child's output that say why, and where the rest is."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        excerpt = meaningful_lines(text)
        lines = [f"{self.name}: {what}", *(f"    {line}" for line in excerpt.lines)]
        if not excerpt.lines and excerpt.usage_left_out:
            lines.append("    (it printed only its usage text)")
        if text.strip():
            left_out = "usage text left out; " if excerpt.usage_left_out and excerpt.lines else ""
            lines.append(f"  ({left_out}whole output: {self.log})")
        return ProcessFailed("\n".join(lines))


def start(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    port: int | None = None,
    output: Path | None = None,
) -> Child:
    """Start argv in a new session (its own process group), stdin closed, output written to log.

    Output goes to a file, not a pipe: a chatty server would block on a full pipe nobody reads. The log
    starts empty, so a failure never quotes an earlier run's lines. With output, stdout goes there and
    log keeps stderr alone (the router's audit records are its stdout)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        err = files.enter_context(log.open("wb"))
        out = files.enter_context(output.open("wb")) if output is not None else err
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return Child(name=name, argv=list(argv), log=log, process=process, port=port)


def wait_for_port(child: Child, host: str, port: int, timeout: float) -> None:
    """Return once host:port accepts connections; raise ProcessFailed if child exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.running():
            raise child.failure(f"exited with status {child.process.returncode} before serving {port}")
        if port_open(host, port):
            return
        time.sleep(0.1)
    raise child.failure(f"did not listen on {host}:{port} within {timeout:.0f}s")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc; [] when there are none."""
    if not PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command (which may hold spaces and parentheses): state ppid pgrp ...
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop(child: Child, sig: signal.Signals = signal.SIGTERM, grace: float = STOP_GRACE_SECONDS) -> int | None:
    """Signal child's whole group, wait up to grace for every member to go, then SIGKILL what is left.

    Returns the leader's exit status. Members that left the group (setsid) are out of reach by design:
    none of the runtimes we start do that."""
    if child.running() or group_members(child.pgid):
        _signal_group(child.pgid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not child.running() and not group_members(child.pgid):
            break
        time.sleep(POLL_SECONDS)
    else:
        _signal_group(child.pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.process.wait(timeout=grace)
    # The leader may have exited first and left members behind (npx's node, uvx's python).
    if group_members(child.pgid):
        _signal_group(child.pgid, signal.SIGKILL)
        deadline = time.monotonic() + grace
        while group_members(child.pgid) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
    return child.process.returncode
