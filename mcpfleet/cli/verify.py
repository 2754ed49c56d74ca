"""`mcpfleet verify`: every server of an environment, and the fleet endpoint (`/mcp`), listed through the
gateway, against the catalog."""

from __future__ import annotations

import enum
import re
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.text import Text

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.cli.app import EXIT_INVALID, CatalogOption, EnvOption, StacksOption, app, refuse
from mcpfleet.cli.console import BAD, ERROR, GOOD, WARN, echo_text, error, progress
from mcpfleet.errors import InvalidInput, display_path
from mcpfleet.fleet import resolve_fleet
from mcpfleet.model import EnvName
from mcpfleet.stacks.loader import load_stack_config, stack_file


class OutputFormat(enum.StrEnum):
    text = "text"
    json = "json"


def _http_url(value: str, option: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter(
            f"expected an http(s) URL such as https://mcp.example.com, not {value!r}", param_hint=option
        )
    return value


def _direct_urls(values: list[str]) -> dict[str, str]:
    urls: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=URL, not {value!r}", param_hint="--server-url")
        urls[name] = _http_url(url, "--server-url")
    return urls


@app.command()
def verify(
    env: EnvOption,
    endpoint: Annotated[
        str,
        typer.Option(
            "--endpoint",
            metavar="URL",
            help=(
                "The gateway's base URL: servers are reached at URL/servers/NAME/mcp, and the fleet endpoint"
                ' at URL/mcp when the token file has a "/mcp" token; or the fleet endpoint\'s URL'
                " (ending in /mcp) to check it alone."
            ),
            show_default=False,
        ),
    ],
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            metavar="FILE",
            help=(
                "A file holding one bearer token for every server, or a YAML/JSON mapping of server name"
                " to token (tokens are bound to one server's audience), with the fleet endpoint's under"
                ' "/mcp".'
            ),
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    cacert: Annotated[
        Path | None,
        typer.Option(
            "--cacert",
            metavar="FILE",
            help=(
                "PEM file of the CAs that sign the gateway's certificate, trusted instead of the system's"
                " (as curl --cacert); e.g. the certificate `mcpfleet dev` prints."
            ),
            exists=True,
            dir_okay=False,
            # An unreadable file is the command's own error (exit 1, saying why), not click's usage error.
            readable=False,
            show_default=False,
        ),
    ] = None,
    catalog: CatalogOption = Path("catalog"),
    stacks: StacksOption = Path("stacks"),
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="Report as text or JSON (on stdout).")
    ] = OutputFormat.text,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.1,
            max=600.0,
            metavar="SECONDS",
            help="Seconds per server and protocol mode, at most.",
        ),
    ] = 10.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, metavar="N", help="Servers verified at once.")
    ] = 8,
    server_url: Annotated[
        list[str] | None,
        typer.Option(
            "--server-url",
            hidden=True,
            metavar="NAME=URL",
            help="NAME=URL: reach NAME at URL instead of through the gateway (tests, debugging).",
        ),
    ] = None,
) -> None:
    """List each enabled server's tools through the gateway (modern and legacy), and the fleet endpoint's
    (every listed tool a declared `<server>__<tool>` matching its pin, every tool the token's roles may call
    listed); exit 1 on drift or outage."""
    # The mcp client and its HTTP stack load only for this command.
    from mcpfleet.verify import (
        CaFileError,
        Limits,
        TokenFileError,
        load_tokens,
        plan,
        render_json,
        render_text,
        run_plan,
        trusting,
    )

    endpoint = _http_url(endpoint, "--endpoint")
    direct = _direct_urls(server_url or [])
    environment: EnvName = env.value
    try:
        loaded = load_catalog(catalog)
        _, settings = load_stack_config(stacks, environment)
        fleet = resolve_fleet(loaded, environment, settings, display_path(stack_file(stacks, environment)))
    except InvalidInput as exc:
        raise refuse(exc) from None
    unknown = sorted(set(direct) - {server.name for server in fleet.servers})
    if unknown:
        raise typer.BadParameter(
            f"not enabled in {environment}: {', '.join(unknown)}", param_hint="--server-url"
        )
    tokens = None
    if token_file is not None:
        try:
            tokens = load_tokens(token_file)
        except TokenFileError as exc:
            error(str(exc))
            raise typer.Exit(EXIT_INVALID) from None
    tls = None
    if cacert is not None:
        try:
            tls = trusting(cacert)
        except CaFileError as exc:
            error(str(exc))
            raise typer.Exit(EXIT_INVALID) from None

    limits = Limits(timeout=timeout, connect=min(5.0, timeout))
    planned = plan(fleet, endpoint, tokens, direct)
    total = planned.count
    with progress(f"Listing {environment}'s servers", total=total) as update:
        listed = 0

        def done(_: object) -> None:
            nonlocal listed
            listed += 1
            update(completed=listed)

        report = run_plan(planned, limits=limits, concurrency=concurrency, tls=tls, done=done)
    if output_format is OutputFormat.json:
        sys.stdout.write(render_json(report))
    else:
        echo_text(coloured(render_text(report)))
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)


# Every problem a server or the fleet endpoint can have, as its status line shows it.
_FAILED = [
    "UNREACHABLE",
    "REFUSED",
    "FAILED",
    "DRIFT",
    "DISAGREE",
    "WITHHELD",
    "UNDECLARED",
    "UNPINNED",
    "ACCESS",
    "DUPLICATE",
]
# The verdicts of the text report: each server's (and the fleet endpoint's) status, failed listings and
# the summary line.
_VERDICTS = (
    (re.compile(r"^\S+: (ok)\b", re.MULTILINE), GOOD),
    (re.compile(rf"^\S+: ({'|'.join(_FAILED)})\b", re.MULTILINE), ERROR),
    (re.compile(r": (FAILED):", re.MULTILINE), BAD),
    (re.compile(r"listings (DISAGREE) on", re.MULTILINE), BAD),
    (re.compile(r"^  (added|removed|changed|withheld|undeclared)(?: \(|:)", re.MULTILINE), WARN),
    (re.compile(r"^(fleet endpoint \S+ ok)$", re.MULTILINE), GOOD),
    (re.compile(r"^(?:.*; )?(fleet endpoint \S+: [a-z, ]+)$", re.MULTILINE), BAD),
)
_SUMMARY = re.compile(r"^((\d+) of (\d+) servers ok)(;|$)", re.MULTILINE)


def coloured(report: str) -> Text:
    """The text report with its verdicts coloured (shown only on a terminal); the words are unchanged."""
    text = Text(report)
    for pattern, style in _VERDICTS:
        for match in pattern.finditer(report):
            text.stylize(style, match.start(1), match.end(1))
    for match in _SUMMARY.finditer(report):
        text.stylize(GOOD if match[2] == match[3] else BAD, match.start(1), match.end(1))
    return text
