"""`mcpfleet dev`: try a catalog without a cluster: its servers from their published packages, behind the
gateway (HAProxy, then the MCP router) on loopback, until Ctrl-C."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.cli.app import EXIT_INVALID, CatalogOption, EnvChoice, StacksOption, app, refuse
from mcpfleet.errors import InvalidInput, display_path
from mcpfleet.fleet import resolve_fleet
from mcpfleet.model import EnvName
from mcpfleet.stacks.loader import load_stack_config, stack_file

# Trying a catalog on one machine is what the local environment is for.
LOCAL = EnvChoice("local")


def _echo(line: str) -> None:
    # Flushed line by line: whoever watches (a terminal, a test reading a pipe) sees each step at once.
    print(line, flush=True)


@app.command()
def dev(
    env: Annotated[
        EnvChoice, typer.Option("--env", "-e", help="Environment whose servers and gateway settings to run.")
    ] = LOCAL,
    catalog: CatalogOption = Path("catalog"),
    stacks: StacksOption = Path("stacks"),
    gateway_port: Annotated[
        int, typer.Option("--gateway-port", min=1, max=65535, help="Loopback port of the gateway.")
    ] = 8080,
    node: Annotated[
        Path | None,
        typer.Option(
            "--node",
            exists=True,
            dir_okay=False,
            help="Node binary to run npm packages with (first on PATH) instead of the one npx finds.",
        ),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(
            "--run-dir",
            file_okay=False,
            help="Where the run keeps its configuration, tokens and logs.",
            show_default="build/dev/<env>",
        ),
    ] = None,
    start_timeout: Annotated[
        float,
        typer.Option(
            "--start-timeout", min=1, help="Seconds each server may take to listen (first runs download)."
        ),
    ] = 180.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would start; start nothing.")
    ] = False,
) -> None:
    """Run the environment's servers that can run here (npm and PyPI packages; stdio ones behind the
    Supergateway bridge) and the gateway (HAProxy, then the MCP router) on 127.0.0.1; print the endpoints;
    stop on Ctrl-C."""
    # The Pulumi-backed gateway renderer loads only for this command.
    from mcpfleet.dev.gateway import GatewayError
    from mcpfleet.dev.launch import Tools
    from mcpfleet.dev.run import DevFailed, make_plan, print_plan, run

    environment: EnvName = env.value
    try:
        loaded = load_catalog(catalog)
        _, settings = load_stack_config(stacks, environment)
        fleet = resolve_fleet(loaded, environment, settings, display_path(stack_file(stacks, environment)))
    except InvalidInput as exc:
        raise refuse(exc) from None

    tools = Tools.detect(node=node.resolve() if node else None)
    plan = make_plan(fleet, tools, os.environ, gateway_port)
    print_plan(plan, _echo, dry_run)
    if dry_run:
        return
    try:
        run(plan, tools, os.environ, run_dir or Path("build") / "dev" / environment, _echo, start_timeout)
    except (DevFailed, GatewayError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise typer.Exit(EXIT_INVALID) from None
