"""`mcpfleet validate`: check the catalog and every stack file without planning anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.cli.app import ENV_CHOICES, CatalogOption, EnvChoice, StacksOption, app, refuse
from mcpfleet.cli.console import GOOD, WARN, WHERE, echo
from mcpfleet.errors import InputProblem, InvalidInput, display_path
from mcpfleet.fleet import resolve_fleet
from mcpfleet.model import ENVIRONMENTS
from mcpfleet.stacks.loader import load_stack_config, stack_deploy_problems, stack_file


@app.command()
def validate(
    catalog: CatalogOption = Path("catalog"),
    stacks: StacksOption = Path("stacks"),
    env: Annotated[
        list[EnvChoice] | None,
        typer.Option(
            "--env",
            "-e",
            metavar="ENV",
            help=f"Only this environment's stack file ({ENV_CHOICES}); repeat for several \\[default: all].",
            show_default=False,
        ),
    ] = None,
    deploy: Annotated[
        bool,
        typer.Option(
            "--deploy",
            help="Ready for `pulumi up`: refuse the shipped example values too (otherwise a warning).",
        ),
    ] = False,
) -> None:
    """Validate every catalog entry, every environment's stack file and each selection.

    A value a deploy needs that is missing is an error; one still at its shipped example (an example
    account, address range, zone, domain, issuer or image repository) is a warning, and an error with
    --deploy, as it is for `pulumi up`."""
    chosen = {choice.value for choice in env} if env else set(ENVIRONMENTS)
    problems: list[InputProblem] = []
    examples: list[InputProblem] = []
    try:
        loaded = load_catalog(catalog)
    except InvalidInput as exc:
        problems.extend(exc.problems)
        loaded = None
    summary = []
    for name in ENVIRONMENTS:
        if name not in chosen or not stack_file(stacks, name).exists():
            continue
        try:
            _, settings = load_stack_config(stacks, name)
            # Deployable, not only plannable (mcpfleet.stacks.deploy): a missing value is refused; a
            # shipped example is refused only when asked whether the stack is ready to deploy.
            problems.extend(stack_deploy_problems(stacks, name, settings, "missing"))
            found = stack_deploy_problems(stacks, name, settings, "example")
            (problems if deploy else examples).extend(found)
            if loaded is not None:
                fleet = resolve_fleet(loaded, name, settings, display_path(stack_file(stacks, name)))
                summary.append(f"{name}: {len(fleet.servers)}")
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise refuse(InvalidInput(problems))
    assert loaded is not None
    _warn_not_deployable(examples)
    echo(("catalog ok", GOOD), f": {len(loaded.entries)} servers; per environment: {', '.join(summary)}")


def _warn_not_deployable(examples: list[InputProblem]) -> None:
    """Each shipped example value on stderr, with the command that replaces it."""
    for problem in examples:
        where = problem.file if problem.line is None else f"{problem.file}:{problem.line}"
        echo(
            ("warning:", WARN),
            " not deployable yet: ",
            (f"{where}:", WHERE),
            f" {problem.field}: {problem.message}",
            err=True,
        )
    if examples:
        stacks = sorted({Path(problem.file).name for problem in examples})
        echo(
            ("warning:", WARN),
            f" {', '.join(stacks)} still hold{'s' if len(stacks) == 1 else ''} shipped example values:"
            " `mcpfleet validate --env <env> --deploy` and `pulumi up` refuse them until they are set",
            err=True,
        )
