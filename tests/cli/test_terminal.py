"""Colour and progress on a terminal only: the real command under a pseudo-terminal shows them, the same
command piped (tests, CI logs) or with NO_COLOR prints the same words as plain text."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, minimal_server

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens on it here


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def run(args: list[str], cwd: Path, *, tty: str = "", env: dict[str, str] | None = None) -> Run:
    """mcpfleet in its own process; tty names the streams given a pseudo-terminal ("stdout", "stderr",
    both), the others are pipes."""
    environment = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "FORCE_COLOR")}
    environment |= {"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "COLUMNS": "200", **(env or {})}
    terminals: dict[str, int] = {}
    streams: dict[str, int] = {}
    for name in ("stdout", "stderr"):
        if name in tty:
            leader, follower = pty.openpty()
            terminals[name] = leader
            streams[name] = follower
    process = subprocess.Popen(
        [sys.executable, "-m", "mcpfleet", *args],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=streams.get("stdout", subprocess.PIPE),
        stderr=streams.get("stderr", subprocess.PIPE),
    )
    for follower in streams.values():
        os.close(follower)
    pipes = {"stdout": process.stdout, "stderr": process.stderr}
    readers = dict(terminals)
    readers |= {name: pipe.fileno() for name, pipe in pipes.items() if pipe is not None}
    seen = dict.fromkeys(readers, b"")
    deadline = time.monotonic() + 300
    open_fds = dict(readers)
    while open_fds and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_fds.values()), [], [], 1)
        for name, fd in list(open_fds.items()):
            if fd not in ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # a terminal whose other end closed (EIO)
                chunk = b""
            if chunk:
                seen[name] += chunk
            else:
                del open_fds[name]
    code = process.wait(timeout=60)
    for leader in terminals.values():
        os.close(leader)
    text = {name: data.decode("utf-8", "replace").replace("\r\n", "\n") for name, data in seen.items()}
    return Run(code, text["stdout"], text["stderr"])


def plain(text: str) -> str:
    return ANSI.sub("", text)


def broken_catalog(catalog_dir: Callable[..., Path]) -> Path:
    return catalog_dir(alpha=minimal_server("alpha", scaling={"replicas": 0}))


def test_errors_are_red_on_a_terminal_and_plain_when_piped(catalog_dir: Callable[..., Path]) -> None:
    args = ["validate", "--env", "local", "--catalog", str(broken_catalog(catalog_dir))]
    piped = run(args, REPO)
    on_terminal = run(args, REPO, tty="stderr")
    assert piped.code == on_terminal.code == 1
    assert "\x1b[" not in piped.stderr
    assert "\x1b[1;31merror:" in on_terminal.stderr
    # The same words either way.
    assert plain(on_terminal.stderr) == piped.stderr
    assert (
        "error: 1 problem in the input:" in piped.stderr
        and "scaling.replicas: must be 1 or more" in piped.stderr
    )


def test_no_color_keeps_a_terminal_plain(catalog_dir: Callable[..., Path]) -> None:
    args = ["validate", "--env", "local", "--catalog", str(broken_catalog(catalog_dir))]
    result = run(args, REPO, tty="stderr", env={"NO_COLOR": "1"})
    assert result.code == 1
    assert "\x1b[" not in result.stderr and "error: 1 problem in the input:" in result.stderr


def test_plan_verdict_is_coloured_on_a_terminal_only(
    catalog_dir: Callable[..., Path], stacks_dir: Path, tmp_path: Path
) -> None:
    root = catalog_dir(alpha=minimal_server("alpha"))
    args = ["plan", "--env", "dev", "--catalog", str(root), "--stacks", str(stacks_dir)]
    piped = run([*args, "--out", str(tmp_path / "piped")], REPO)
    shown = run([*args, "--out", str(tmp_path / "shown")], REPO, tty="stdout stderr")
    assert piped.code == shown.code == 0, piped.stderr
    assert "\x1b[" not in piped.stdout + piped.stderr
    assert "policy review: \x1b[32m0 mandatory" in shown.stdout
    assert plain(shown.stdout).splitlines()[-1] == piped.stdout.splitlines()[-1]


def test_plan_progress_on_a_terminal_stderr_only(
    catalog_dir: Callable[..., Path], stacks_dir: Path, tmp_path: Path
) -> None:
    root = catalog_dir(**{f"s{i}": minimal_server(f"s{i}") for i in range(20)})
    args = ["plan", "--env", "dev", "--catalog", str(root), "--stacks", str(stacks_dir)]
    shown = run([*args, "--out", str(tmp_path / "shown")], REPO, tty="stderr")
    assert shown.code == 0, shown.stderr
    phases = plain(shown.stderr)
    for phase in ("Loading the catalog and the stack file", "Running the program", "Reviewing", "Writing"):
        assert phase in phases, phases
    counts = [int(n.replace(",", "")) for n in re.findall(r"Running the program: ([\d,]+) resources", phases)]
    assert counts and counts == sorted(counts) and counts[-1] > 100, counts
    # Drawn on stderr; stdout (a pipe here) has the summary alone.
    assert "Running the program" not in shown.stdout and shown.stdout.startswith("plan dev: 20 servers")

    piped = run([*args, "--out", str(tmp_path / "piped")], REPO)
    assert piped.code == 0
    assert (
        "Running the program" not in piped.stderr and "\r" not in piped.stderr and "\x1b" not in piped.stderr
    )


def test_verify_progress_counts_servers_on_a_terminal_only(catalog_dir: Callable[..., Path]) -> None:
    root = catalog_dir(alpha=minimal_server("alpha"), beta=minimal_server("beta"))
    args = ["verify", "--env", "dev", "--catalog", str(root), "--endpoint", CLOSED, "--timeout", "2"]
    shown = run(args, REPO, tty="stderr")
    assert shown.code == 1
    assert "Listing dev's servers" in plain(shown.stderr) and "2/2" in plain(shown.stderr)
    assert "\x1b" not in shown.stdout and "0 of 2 servers ok" in shown.stdout

    coloured = run(args, REPO, tty="stdout")
    assert "\x1b[1;31mUNREACHABLE" in coloured.stdout
    assert plain(coloured.stdout) == shown.stdout

    piped = run(args, REPO)
    assert piped.stderr == "" and piped.stdout == shown.stdout
