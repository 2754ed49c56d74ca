"""The typer application and the rules every command shares."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from mcpfleet.errors import InvalidInput
from mcpfleet.model import ENVIRONMENTS

app = typer.Typer(
    name="mcpfleet",
    help="Run a fleet of MCP servers on Kubernetes, declared by a catalog and one stack per environment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_INVALID = 1

EnvChoice = enum.Enum("EnvChoice", {env: env for env in ENVIRONMENTS}, type=str)  # type: ignore[misc]

EnvOption = Annotated[
    EnvChoice,
    typer.Option("--env", "-e", help="Environment (a Pulumi stack).", show_default=False),
]
CatalogOption = Annotated[
    Path, typer.Option("--catalog", help="Catalog folder holding servers/*.yaml.", file_okay=False)
]
StacksOption = Annotated[
    Path, typer.Option("--stacks", help="Folder of the Pulumi.<env>.yaml stack files.", file_okay=False)
]


def refuse(exc: InvalidInput) -> typer.Exit:
    """Print every problem on stderr and give the exit code for invalid input."""
    count = len(exc.problems)
    print(f"error: {count} problem{'s' if count != 1 else ''} in the input:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    return typer.Exit(EXIT_INVALID)
