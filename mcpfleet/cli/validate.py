"""`mcpfleet validate`: check the catalog and every stack file without planning anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.cli.app import ENV_CHOICES, CatalogOption, EnvChoice, StacksOption, app, refuse
from mcpfleet.cli.console import GOOD, echo
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
) -> None:
    """Validate every catalog entry, every environment's stack file (ready to deploy), and each selection."""
    chosen = {choice.value for choice in env} if env else set(ENVIRONMENTS)
    problems: list[InputProblem] = []
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
            # Deployable, not only plannable: values only the stack's owner can give are refused when
            # missing or still the shipped examples (mcpfleet.stacks.deploy).
            problems.extend(stack_deploy_problems(stacks, name, settings))
            if loaded is not None:
                fleet = resolve_fleet(loaded, name, settings, display_path(stack_file(stacks, name)))
                summary.append(f"{name}: {len(fleet.servers)}")
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise refuse(InvalidInput(problems))
    assert loaded is not None
    echo(("catalog ok", GOOD), f": {len(loaded.entries)} servers; per environment: {', '.join(summary)}")
