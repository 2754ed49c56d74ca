"""`mcpfleet verify`: every server of an environment, listed through the gateway, against the catalog."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.cli.app import EXIT_INVALID, CatalogOption, EnvOption, StacksOption, app, refuse
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
            help="The gateway's base URL; servers are reached at <URL>/servers/<name>/mcp.",
            show_default=False,
        ),
    ],
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help=(
                "A file holding one bearer token for every server, or a YAML/JSON mapping of server name"
                " to token (tokens are bound to one server's audience)."
            ),
            dir_okay=False,
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
        typer.Option("--timeout", min=0.1, max=600.0, help="Seconds per server and protocol mode, at most."),
    ] = 10.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Servers verified at once.")
    ] = 8,
    server_url: Annotated[
        list[str] | None,
        typer.Option(
            "--server-url",
            hidden=True,
            help="NAME=URL: reach NAME at URL instead of through the gateway (tests, debugging).",
        ),
    ] = None,
) -> None:
    """List each enabled server's tools through the gateway (modern and legacy); exit 1 on drift or outage."""
    # The mcp client and its HTTP stack load only for this command.
    from mcpfleet.verify import Limits, TokenFileError, load_tokens, render_json, render_text, verify_fleet

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
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(EXIT_INVALID) from None

    limits = Limits(timeout=timeout, connect=min(5.0, timeout))
    report = verify_fleet(fleet, endpoint, tokens, limits=limits, concurrency=concurrency, direct=direct)
    render = render_json if output_format is OutputFormat.json else render_text
    sys.stdout.write(render(report))
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)
