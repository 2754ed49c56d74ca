"""Process groups stop whole: what a leader leaves behind is killed too."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from mcpfleet.dev import process


def test_a_member_that_ignores_the_stop_signal_is_killed(tmp_path: Path) -> None:
    # The leader dies on SIGTERM; its background child ignores it (as a wedged server might).
    child = process.start(
        "stubborn", ["sh", "-c", "(trap '' TERM; sleep 300) & echo started; sleep 300"], tmp_path / "log"
    )
    while "started" not in (tmp_path / "log").read_text():
        assert child.running()
        time.sleep(0.01)
    assert len(process.group_members(child.pgid)) >= 2
    assert process.stop(child, grace=0.5) == -signal.SIGTERM
    assert process.group_members(child.pgid) == []


def test_sigint_lets_a_server_exit_on_its_own(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *_: sys.exit(0))\n"
        "print('up', flush=True)\n"
        "time.sleep(300)"
    )
    child = process.start("polite", [sys.executable, "-c", code], tmp_path / "log")
    while "up" not in (tmp_path / "log").read_text():
        assert child.running()
        time.sleep(0.01)
    assert process.stop(child, signal.SIGINT) == 0
    assert process.group_members(child.pgid) == []


def test_waiting_for_a_port_reports_an_early_exit_with_the_log(tmp_path: Path) -> None:
    child = process.start("broken", ["sh", "-c", "echo 'no such package' >&2; exit 3"], tmp_path / "log")
    with pytest.raises(
        process.ProcessFailed, match=r"broken: exited with status 3 before serving \d+"
    ) as info:
        process.wait_for_port(child, "127.0.0.1", process.free_port(), timeout=10)
    assert "no such package" in str(info.value)


def test_a_failure_shows_the_error_above_pages_of_usage(tmp_path: Path) -> None:
    usage = 'for i in $(seq 40); do echo "  --flag$i  usage"; done'
    script = f"echo 'Error: no current-context is set'; {usage}; exit 1"
    child = process.start("kubernetes", ["sh", "-c", script], tmp_path / "log")
    with pytest.raises(process.ProcessFailed) as info:
        process.wait_for_port(child, "127.0.0.1", process.free_port(), timeout=10)
    message = str(info.value)
    assert "Error: no current-context is set" in message
    assert message.rstrip().endswith("--flag40  usage")
