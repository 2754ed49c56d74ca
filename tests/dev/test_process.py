"""Process groups stop whole: what a leader leaves behind is killed too."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from mcpfleet.dev import process

FIXTURES = Path(__file__).parent / "fixtures"


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


def test_a_failure_shows_the_reason_and_leaves_the_usage_out(tmp_path: Path) -> None:
    # What kubernetes-mcp-server 0.0.66 printed when started by npx without a kubeconfig (captured here):
    # the reason in two lines, then 45 of usage and flags, then npm's notice.
    log = (FIXTURES / "kubernetes-mcp-server-without-kubeconfig.log").read_text()
    assert len(log.splitlines()) > 40
    script = f"cat {FIXTURES / 'kubernetes-mcp-server-without-kubeconfig.log'}; exit 1"
    child = process.start("kubernetes", ["sh", "-c", script], tmp_path / "log")
    with pytest.raises(process.ProcessFailed) as info:
        process.wait_for_port(child, "127.0.0.1", process.free_port(), timeout=10)
    assert str(info.value).splitlines()[1:] == [
        "    Error: unable to create kubernetes target provider: no current-context is set and no contexts"
        " are defined in kubeconfig.",
        "    Configure a context with 'kubectl config set-context <name>' and 'kubectl config use-context"
        " <name>'",
        f"  (usage text left out; whole output: {tmp_path / 'log'})",
    ]


def test_the_first_error_and_the_last_lines_of_a_long_output() -> None:
    lines = ["starting", "Error: config file /etc/x.yaml not found", *(f"step {i}" for i in range(20)), "bye"]
    excerpt = process.meaningful_lines("\n".join(lines))
    assert excerpt.lines == [
        "Error: config file /etc/x.yaml not found",
        "...",
        "step 16",
        "step 17",
        "step 18",
        "step 19",
        "bye",
    ]
    assert not excerpt.usage_left_out


def test_a_python_traceback_keeps_its_last_lines() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "<frozen runpy>", line 198, in _run_module_as_main\n'
        '  File "/srv/app/server.py", line 3, in <module>\n'
        "    import missing_module\n"
        "ModuleNotFoundError: No module named 'missing_module'\n"
    )
    assert process.meaningful_lines(text).lines == text.splitlines()[-5:]


def test_argparse_usage_then_its_error() -> None:
    text = (
        "usage: alpha-mcp [-h] [--port PORT]\n"
        "                 [--host HOST] ROOT\n"
        "alpha-mcp: error: the following arguments are required: ROOT\n"
    )
    excerpt = process.meaningful_lines(text)
    assert excerpt.lines == ["alpha-mcp: error: the following arguments are required: ROOT"]
    assert excerpt.usage_left_out


def test_colours_blank_lines_and_npm_notices_are_dropped() -> None:
    text = "\x1b[31mnpm error\x1b[0m code E404\n\nnpm notice New minor version of npm available!\n"
    assert process.meaningful_lines(text).lines == ["npm error code E404"]


def test_a_server_that_printed_only_its_usage(tmp_path: Path) -> None:
    script = "printf 'Usage: alpha [options]\\n\\nOptions:\\n  --port  the port\\n'; exit 2"
    child = process.start("alpha", ["sh", "-c", script], tmp_path / "log")
    with pytest.raises(process.ProcessFailed) as info:
        process.wait_for_port(child, "127.0.0.1", process.free_port(), timeout=10)
    assert str(info.value).splitlines()[1:] == [
        "    (it printed only its usage text)",
        f"  (whole output: {tmp_path / 'log'})",
    ]
