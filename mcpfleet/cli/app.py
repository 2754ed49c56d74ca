"""The typer application and the rules every command shares: `-h`/`--help`, `--version`, readable
placeholders in help, and how invalid input is refused."""

from __future__ import annotations

import enum
import importlib.metadata
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

from mcpfleet.cli.console import print_problems
from mcpfleet.errors import InvalidInput
from mcpfleet.model import ENVIRONMENTS

EXIT_INVALID = 1

# typer's own placeholder words (`<str>`, `<int range>`, `<list[Path]>`) as the capitals people read in
# the help of git, curl or kubectl.
_TYPE_WORDS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "NUMBER",
    "dir": "DIR",
    "file": "FILE",
    "path": "PATH",
}


def readable_metavar(typer_label: str) -> str:
    """A placeholder for typer's type label: `<dir>` -> DIR, `<list[Path]>` -> PATH, `<a|b>` -> [a|b]."""
    label = typer_label.strip("<>")
    label = re.sub(r"^list\[(.*)\]$", r"\1", label)
    label = re.sub(r" range$", "", label)
    if "|" in label:
        return f"[{label}]"
    return _TYPE_WORDS.get(label.lower(), label.upper())


class _Argument(TyperArgument):
    # typer shows an argument's type beside its name even when a metavar names it (options show only the
    # metavar): the name column says it already.
    def display_type_rich(self, ctx: Any) -> str | None:
        return None if self.metavar else super().display_type_rich(ctx)


# `ctx: Any` below: typer's commands take the Context of the click it vendors, which it does not export.
def _readable(params: list[Any], ctx: Any) -> None:
    """Give every parameter a readable placeholder: flags none, others their metavar or one from the type."""
    for param in params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else readable_metavar(param.display_type(ctx))
        elif type(param) is TyperArgument:
            if param.metavar is None:
                param.metavar = readable_metavar(param.display_type(ctx))
            param.__class__ = _Argument


class FleetCommand(TyperCommand):
    """Every command: readable placeholders, whoever declared its options (mcpfleet/cli/*.py)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _readable(params, ctx)
        return params


class FleetGroup(TyperGroup):
    """The `mcpfleet` group itself: the same placeholders for its own options."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _readable(params, ctx)
        return params


class FleetTyper(typer.Typer):
    """A Typer whose commands are FleetCommands unless they ask for another class."""

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or FleetCommand, **kwargs)


app = FleetTyper(
    name="mcpfleet",
    help="Run a fleet of MCP servers on Kubernetes, declared by a catalog and one stack per environment.",
    cls=FleetGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def package_version() -> str:
    """mcpfleet's version, as installed (pyproject.toml's `version`)."""
    try:
        return importlib.metadata.version("mcpfleet")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: `pip install -e .` in the repository)"


def _print_version(value: bool) -> None:
    if value:
        print(f"mcpfleet {package_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print mcpfleet's version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    pass


EnvChoice = enum.Enum("EnvChoice", {env: env for env in ENVIRONMENTS}, type=str)  # type: ignore[misc]
ENV_CHOICES = ", ".join(ENVIRONMENTS[:-1]) + f" or {ENVIRONMENTS[-1]}"

EnvOption = Annotated[
    EnvChoice,
    typer.Option(
        "--env", "-e", metavar="ENV", help=f"Environment (a Pulumi stack): {ENV_CHOICES}.", show_default=False
    ),
]
CatalogOption = Annotated[
    Path,
    typer.Option("--catalog", metavar="DIR", help="Catalog folder holding servers/*.yaml.", file_okay=False),
]
StacksOption = Annotated[
    Path,
    typer.Option(
        "--stacks", metavar="DIR", help="Folder of the Pulumi.ENV.yaml stack files.", file_okay=False
    ),
]


def refuse(exc: InvalidInput) -> typer.Exit:
    """Print every problem on stderr and give the exit code for invalid input."""
    print_problems(exc.problems)
    return typer.Exit(EXIT_INVALID)
