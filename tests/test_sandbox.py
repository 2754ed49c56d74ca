"""tests/sandbox.py without root: a session as a plain user hands its `sandbox` tests to a child session
that is root of private user and network namespaces, where the DNS server gets port 53 and a sandboxed
command resolves through it; the child's results count as the session's own; an unmarked test using the
sandbox, and a machine without user namespaces, fail saying why. As root (CI), the session runs as a
user without capabilities, so the path without root is taken there too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import sandbox

REPO = Path(__file__).resolve().parent.parent

INNER_TESTS = Path(__file__).resolve().parent / "sandbox_inner" / "inner_tests.py"


def as_plain_user() -> list[str]:
    """The prefix that runs a command without root. As root: uid 1000 of a user namespace of its own (no
    capability on the machine, as any user; it sees root's files, this run's, as its own)."""
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare (util-linux) is not installed")
    return [unshare, "--user", "--map-user=1000", "--map-group=1000"]


def test_without_root_the_sandbox_tests_run_in_a_private_namespace_and_report_here(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\naddopts = -ra --strict-markers\n", encoding="utf-8")
    (project / "conftest.py").write_text('pytest_plugins = ["tests.sandbox"]\n', encoding="utf-8")
    shutil.copy(INNER_TESTS, project / "test_inner.py")
    # A module after the one whose last tests are handed over: it must start as if those had run here.
    (project / "test_later.py").write_text("def test_later_on_the_host():\n    pass\n", encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HOME": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "COLUMNS": "400",  # the short summary lines whole
    }
    env.pop(sandbox.STATE_ENV, None)
    result = subprocess.run(
        [
            *as_plain_user(),
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'tmp'}",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "2 tests marked sandbox: run in a child session" in out
    assert "2 failed, 3 passed" in out.splitlines()[-1]
    # The child's failure is reported here, with its traceback and in the short summary.
    assert "AssertionError: failed inside the namespace" in out
    assert "FAILED test_inner.py::test_a_failure_in_the_namespace" in out
    assert (
        "FAILED test_inner.py::test_unmarked_use_of_the_sandbox - Failed: "
        "test_inner.py::test_unmarked_use_of_the_sandbox uses the gateway sandbox but is not marked"
    ) in out


def test_a_process_that_cannot_make_a_user_namespace_gets_the_reason_and_what_the_machine_needs() -> None:
    """unshare(CLONE_NEWUSER) refuses a process with two threads, as a machine without unprivileged
    user namespaces refuses any: a real refusal, in a process of its own."""
    code = textwrap.dedent(
        """
        import threading, time
        from tests.sandbox import Unavailable, enter_namespaces
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        try:
            enter_namespaces()
        except Unavailable as error:
            print(error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    said = result.stdout
    assert said.startswith("no private user namespace for the gateway sandbox: unshare failed:"), said
    assert "(the process has more than one thread)" in said
    assert "user.max_user_namespaces" in said and "or run the tests as root" in said


def test_a_test_needing_the_sandbox_where_none_could_be_made_fails_with_that_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sandbox, "_current_test_unmarked", "")
    monkeypatch.setenv(sandbox.STATE_ENV, sandbox.UNAVAILABLE + "unshare failed: Operation not permitted")
    with pytest.raises(pytest.fail.Exception, match=r"^unshare failed: Operation not permitted$"):
        sandbox.require_sandbox_tools()
    monkeypatch.delenv(sandbox.STATE_ENV)
    with pytest.raises(pytest.fail.Exception, match="needs root, or the private user namespace"):
        sandbox.require_sandbox_tools()


def test_the_machine_settings_named_are_those_this_kernel_has() -> None:
    settings = sandbox.userns_settings()
    assert "user.max_user_namespaces=" in settings  # every kernel with user namespaces has it
    for name in sandbox.USERNS_SYSCTLS:
        shown = name.replace("/", ".")
        assert (shown + "=" in settings) == (Path("/proc/sys") / name).exists()
