"""scripts/install_tools.py: where the tests look for their tools, what apt resolves for a machine that has
none of them, the unpacking path without root for real, and its errors when nothing can install them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from scripts import install_tools


def test_the_tools_folder_comes_first_then_path_then_the_sbin_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/opt/a:/usr/bin")
    assert install_tools.search_path(tmp_path).split(os.pathsep) == [
        str(tmp_path / "bin"),
        "/opt/a",
        "/usr/bin",
        "/usr/local/sbin",
        "/usr/sbin",
        "/sbin",
    ]


def test_the_conftest_puts_the_tools_folder_first_on_path() -> None:
    assert os.environ["PATH"].split(os.pathsep)[0] == str(install_tools.DEFAULT_TOOLS / "bin")


def test_on_a_machine_with_no_packages_apt_resolves_haproxy_with_its_libraries(tmp_path: Path) -> None:
    """What the unpacking path downloads on a fresh machine: an empty dpkg status stands for one."""
    empty = tmp_path / "status"
    empty.write_text("", encoding="utf-8")
    apt = install_tools.Apt(tmp_path / "tools", ["haproxy"])
    apt.options += ["-o", f"Dir::State::status={empty}"]
    needed = apt.needed(["haproxy"])
    assert {"haproxy", "libc6", "liblua5.3-0", "libssl3", "libpcre2-8-0"} <= set(needed)
    assert all(version for version in needed.values()), needed


@pytest.mark.slow
def test_without_root_haproxy_and_promtool_are_unpacked_into_the_tools_folder(tmp_path: Path) -> None:
    """`--user` takes the path of a user without root even as root; `--missing` ignores the machine's own."""
    tools = tmp_path / "tools"
    names = ("haproxy", "promtool")
    argv = [
        "--tools",
        str(tools),
        "--user",
        *(f"--only={n}" for n in names),
        *(f"--missing={n}" for n in names),
    ]
    assert install_tools.main(argv) == 0
    for tool in install_tools.TOOLS:
        if tool.command not in names:
            continue
        binary = tools / "bin" / tool.command
        unpacked = tools / "root" / tool.path
        # A link to the unpacked binary, or (where it needs unpacked libraries) a wrapper that runs it.
        assert binary.resolve() == unpacked or f'exec "{unpacked}" "$@"' in binary.read_text(), binary
        assert install_tools.version_of(tool, str(binary)) is not None
    assert not (tools / "debs").exists()
    version = subprocess.run([tools / "bin" / "haproxy", "-v"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("HAProxy version 2.6.")
    # Installed now: a second run changes nothing and says nothing.
    before = {path: path.stat().st_mtime_ns for path in (tools / "bin").iterdir()}
    result = subprocess.run(
        ["python3", "-m", "scripts.install_tools", "--tools", str(tools), "--user", "--only=haproxy"],
        cwd=install_tools.REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert {path: path.stat().st_mtime_ns for path in (tools / "bin").iterdir()} == before


def test_without_root_and_without_apt_the_error_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(install_tools, "SBIN", ())
    code = install_tools.main(
        ["--tools", str(tmp_path / "tools"), "--user", "--only=haproxy", "--missing=haproxy"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("install-tools: error: no root and no apt-get/dpkg-deb to unpack haproxy:"), err
    assert "Traceback" not in err


def test_as_root_without_apt_the_error_names_the_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(install_tools, "SBIN", ())
    monkeypatch.setattr(install_tools, "is_root", lambda: True)
    argv = ["--tools", str(tmp_path / "tools"), "--only=haproxy", "--only=promtool"]
    assert install_tools.main(argv) == 1
    err = capsys.readouterr().err
    assert "no apt-get on this machine: install haproxy, prometheus with its package manager" in err


def test_a_tool_of_the_wrong_version_counts_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "tools" / "bin" / "haproxy"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'HAProxy version 2.8.5-1ubuntu3 2024/04/01'\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(install_tools, "SBIN", ())
    haproxy = next(tool for tool in install_tools.TOOLS if tool.command == "haproxy")
    assert install_tools.version_of(haproxy, str(fake)) == "2.8.5-1ubuntu3"
    assert install_tools.locate(haproxy, tmp_path / "tools") is None


def test_npm_and_npx_without_root_trust_the_machine_cas_as_well_as_node_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node from the npm registry trusts only the CAs built into it: behind a proxy re-signing TLS with a
    CA of the machine's, npm fails (SELF_SIGNED_CERT_IN_CHAIN) unless the machine's bundle is added."""
    bundle = tmp_path / "machine-cas.pem"
    bundle.write_text("", encoding="utf-8")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.delenv("NODE_EXTRA_CA_CERTS", raising=False)
    node = tmp_path / "node"
    (node / "bin").mkdir(parents=True)
    # A stand-in for Node: says which script it runs and the CA file it was given.
    (node / "bin" / "node").write_text(
        '#!/bin/sh\necho "$1 ${NODE_EXTRA_CA_CERTS:-none}"\n', encoding="utf-8"
    )
    (node / "bin" / "node").chmod(0o755)
    npm = tmp_path / "npm"
    tools = tmp_path / "tools"
    assert install_tools.npm_wrappers(tools, node, npm, "22.0.0") == tools / "bin" / "npm"
    for command in ("npm", "npx"):
        said = subprocess.run([tools / "bin" / command], capture_output=True, text=True, check=True)
        assert said.stdout == f"{npm / 'bin' / f'{command}-cli.js'} {bundle}\n"
    # One the user set wins.
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": "/elsewhere.pem"}
    said = subprocess.run([tools / "bin" / "npx"], capture_output=True, text=True, check=True, env=env)
    assert said.stdout.endswith(" /elsewhere.pem\n")
