"""`mcpfleet dev`: try a catalog without a cluster: its servers from their published packages, behind the
gateway (HAProxy, then the MCP router) on loopback, until Ctrl-C."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.cli.app import EXIT_INVALID, CatalogOption, EnvChoice, StacksOption, app, refuse
from mcpfleet.cli.console import BAD, ERROR, GOOD, WARN, Part, console, echo, error, interactive
from mcpfleet.errors import InvalidInput, display_path
from mcpfleet.fleet import resolve_fleet
from mcpfleet.model import EnvName
from mcpfleet.stacks.loader import load_stack_config, stack_file

# Trying a catalog on one machine is what the local environment is for.
LOCAL = EnvChoice("local")
DEFAULT_CATALOG = Path("catalog")
DEFAULT_STACKS = Path("stacks")
# The first word of a line that is a verdict, in its colour (on a terminal only).
_VERDICTS = {"ready:": GOOD, "failed:": ERROR, "warning:": WARN, "skipped": WARN, "error:": BAD}


def _echo(line: str) -> None:
    """One line on stdout, its verdict coloured; rich flushes each line, so whoever watches (a terminal, a
    test reading a pipe) sees each step at once."""
    word = line.split(" ", 1)[0]
    style = _VERDICTS.get(word)
    parts: list[Part] = [(word, style), line[len(word) :]] if style else [line]
    echo(*parts)


class _Display:
    """The waits on a terminal's stderr: a line per server (then the router and the gateway) still
    starting, with its time so far, under a count of them; erased when everything is up.

    The outcome lines are printed meanwhile (on stdout); when stdout is the same terminal they go
    through rich, above the display, instead of through it."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console(stderr=True),
            transient=True,
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=False,
        )
        self._rows: dict[str, TaskID] = {}
        self._summary: TaskID | None = None
        self._begun = 0
        self._ended = 0
        self._drawn = False

    def begin(self, name: str, waiting_for: str) -> None:
        if not self._drawn:
            self._summary = self._progress.add_task("Starting")
            self._progress.start()
            self._drawn = True
        self._begun += 1
        self._rows[name] = self._progress.add_task(f"  {name}: waiting for {waiting_for}")
        self._count()

    def end(self, name: str) -> None:
        row = self._rows.pop(name, None)
        if row is not None:
            self._progress.remove_task(row)
            self._ended += 1
            self._count()

    def close(self) -> None:
        if self._drawn:
            self._progress.stop()
            self._drawn = False

    def _count(self) -> None:
        if self._summary is not None:
            waiting = self._begun - self._ended
            self._progress.update(
                self._summary,
                description=f"Starting: {waiting} of {self._begun} not ready yet (first starts download)",
            )
            # At once, not at the next tick: the row of a server that was just reported ready goes now.
            self._progress.refresh()


def _program() -> list[str]:
    """How this shell runs mcpfleet again: `mcpfleet` when that is this one on PATH, else the path it was
    started by, else this Python's `-m mcpfleet`."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 and Path(argv0).name == "mcpfleet" and Path(argv0).is_file():
        on_path = shutil.which("mcpfleet")
        if on_path is not None and Path(on_path).resolve() == Path(argv0).resolve():
            return ["mcpfleet"]
        return [argv0]
    return [sys.executable, "-m", "mcpfleet"]


def _inputs(catalog: Path, stacks: Path) -> list[str]:
    """The options naming the catalog and stacks this run reads, for the commands it prints (named only
    when not the defaults)."""
    options: list[str] = []
    if catalog != DEFAULT_CATALOG:
        options += ["--catalog", str(catalog)]
    if stacks != DEFAULT_STACKS:
        options += ["--stacks", str(stacks)]
    return options


# The gateway's port unless something else holds it: a stable address for clients configured by hand.
PREFERRED_GATEWAY_PORT = 8080


def _gateway_port() -> int:
    from mcpfleet.dev import process
    from mcpfleet.dev.run import LOOPBACK

    if not process.port_open(LOOPBACK, PREFERRED_GATEWAY_PORT):
        return PREFERRED_GATEWAY_PORT
    return process.free_port(LOOPBACK)


@app.command()
def dev(
    env: Annotated[
        EnvChoice, typer.Option("--env", "-e", help="Environment whose servers and gateway settings to run.")
    ] = LOCAL,
    catalog: CatalogOption = DEFAULT_CATALOG,
    stacks: StacksOption = DEFAULT_STACKS,
    gateway_port: Annotated[
        int | None,
        typer.Option(
            "--gateway-port",
            min=1,
            max=65535,
            metavar="PORT",
            help=f"Gateway loopback port \\[default: {PREFERRED_GATEWAY_PORT}, or a free one if taken]",
        ),
    ] = None,
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
    Supergateway bridge) and the gateway (HAProxy, then the MCP router) on 127.0.0.1; print the endpoints
    (each server's, and the fleet endpoint /mcp over all of them), the `mcpfleet verify` command for them
    and how to hand /mcp's token to a client; stop on Ctrl-C. Servers known not to run here (a secret
    not set, no runtime, a container path, no kubeconfig) are skipped with the reason."""
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
    plan = make_plan(fleet, tools, os.environ, gateway_port or _gateway_port())
    print_plan(plan, _echo, dry_run)
    if dry_run:
        return
    try:
        run(
            plan,
            tools,
            os.environ,
            run_dir or Path("build") / "dev" / environment,
            _echo,
            start_timeout,
            program=_program(),
            inputs=_inputs(catalog, stacks),
            watch=_Display() if interactive() else None,
        )
    except (DevFailed, GatewayError) as exc:
        error(str(exc))
        raise typer.Exit(EXIT_INVALID) from None
