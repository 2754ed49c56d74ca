"""What a platform engineer types first: `--version`, `-h` on every command, and help whose placeholders
read as words (DIR, FILE, URL, ENV), never as Python types (`<bool>`, `<list[Path]>`)."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from mcpfleet.cli.app import readable_metavar
from mcpfleet.cli.main import app
from tests.conftest import REPO

runner = CliRunner()
# Wide enough that no placeholder is split across lines of the help table.
WIDE = {"COLUMNS": "250", "NO_COLOR": "1"}
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
# typer's own type labels: `<bool>`, `<str>`, `<int range>`, `<list[Path]>`, `<local|dev|staging|prod>`.
RAW_TYPE = re.compile(
    r"<(bool|str|int|float|dir|file|path|datetime|uuid)( range)?>|<list\[|<[^<>\s]*\|[^<>\s]*>", re.IGNORECASE
)


def help_of(*args: str) -> str:
    result = runner.invoke(app, [*args], env=WIDE)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def test_every_command_is_covered() -> None:
    # A new command is checked as soon as it is registered; these are the ones the README lists.
    assert {"dev", "diff", "new", "pin", "plan", "validate", "verify"} <= set(COMMANDS)


def test_version_is_the_installed_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"mcpfleet {importlib.metadata.version('mcpfleet')}\n"


def test_version_from_the_console_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpfleet", "--version"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout.split()) == (0, ["mcpfleet", importlib.metadata.version("mcpfleet")])


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_h_is_help(command: str) -> None:
    args = [command] if command else []
    short = help_of(*args, "-h")
    assert short == help_of(*args, "--help")
    assert "Usage: mcpfleet" in short and "-h" in short


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_placeholders_are_words(command: str) -> None:
    text = help_of(*([command] if command else []), "--help")
    assert not RAW_TYPE.findall(text), text
    # Flags take no value, so they show no placeholder at all.
    for line in text.splitlines():
        if "--help" in line:
            assert re.search(r"--help\s+-h\s+Show this message", line), line


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_a_readable_placeholder(command: str) -> None:
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    context = click_command.make_context(command, [], resilient_parsing=True)
    for param in click_command.get_params(context):
        if getattr(param, "is_flag", False):
            assert param.metavar == "", param.name
        else:
            assert param.metavar and re.fullmatch(r"[A-Z][A-Z_:=]*|\[[a-z|-]+\]", param.metavar), (
                param.name,
                param.metavar,
            )


@pytest.mark.parametrize(
    ("command", "option", "placeholder"),
    [
        ("plan", "--env", "ENV"),
        ("plan", "--catalog", "DIR"),
        ("plan", "--out", "DIR"),
        ("diff", "--base", "REF"),
        ("diff", "--append", "FILE"),
        ("verify", "--endpoint", "URL"),
        ("verify", "--cacert", "FILE"),
        ("verify", "--timeout", "SECONDS"),
        ("verify", "--format", "[text|json]"),
        ("new", "--image", "REPOSITORY:TAG"),
        ("validate", "--env", "ENV"),
    ],
)
def test_named_placeholders(command: str, option: str, placeholder: str) -> None:
    line = next(line for line in help_of(command, "-h").splitlines() if f" {option} " in line)
    assert re.search(rf"{re.escape(option)}(\s+-\w)?\s+{re.escape(placeholder)}\s", line), line


def test_defaults_written_in_help_are_shown() -> None:
    # Square brackets in help are rich markup unless escaped: the defaults used to vanish.
    assert "[default: build/ENV]" in help_of("plan", "-h")
    assert "[default: stdout]" in help_of("diff", "-h")
    assert "[default: all]" in help_of("validate", "-h")


@pytest.mark.parametrize(
    ("label", "words"),
    [
        ("<dir>", "DIR"),
        ("<file>", "FILE"),
        ("<path>", "PATH"),
        ("<list[Path]>", "PATH"),
        ("<str>", "TEXT"),
        ("<int range>", "INTEGER"),
        ("<float>", "NUMBER"),
        ("<local|dev>", "[local|dev]"),
        ("<list[local|dev]>", "[local|dev]"),
    ],
)
def test_typer_labels_become_words(label: str, words: str) -> None:
    assert readable_metavar(label) == words
