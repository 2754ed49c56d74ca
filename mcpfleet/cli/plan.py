"""`mcpfleet plan`: the environment's resources and manifests, offline, in build/<env>/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcpfleet.cli.app import EXIT_INVALID, CatalogOption, EnvOption, StacksOption, app, refuse
from mcpfleet.cli.console import BAD, ERROR, GOOD, echo, interactive, progress
from mcpfleet.errors import InvalidInput, display_path
from mcpfleet.model import EnvName


def _phase(phase: str, count: int, shown_out: str) -> str:
    """What the progress line says while the plan is in phase."""
    if phase == "loading":
        return "Loading the catalog and the stack file"
    if phase == "program":
        return f"Running the program: {count:,} resources registered" if count else "Running the program"
    if phase == "review":
        return f"Reviewing {count:,} resources against the policies"
    return f"Writing {count:,} files to {shown_out}/"


@app.command()
def plan(
    env: EnvOption,
    catalog: CatalogOption = Path("catalog"),
    stacks: StacksOption = Path("stacks"),
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Output folder \\[default: build/ENV]", file_okay=False),
    ] = None,
) -> None:
    """Run the Pulumi program offline; write manifests/ and resources.json, replacing the old plan at once."""
    from mcpfleet.plan.run import plan as run_plan  # the Pulumi SDK loads only for commands that need it

    environment: EnvName = env.value
    out_dir = out or Path("build") / environment
    shown_out = display_path(out_dir)
    try:
        # Drawn without a thread of its own: the plan forks its helper processes.
        with progress(_phase("loading", 0, shown_out), animate=False) as update:

            def tell(phase: str, count: int) -> None:
                update(description=_phase(phase, count, shown_out))

            # Off a terminal nothing is drawn, and nothing is counted either.
            result = run_plan(environment, catalog, stacks, out_dir, progress=tell if interactive() else None)
    except InvalidInput as exc:
        raise refuse(exc) from None

    fleet = result.fleet
    manifests = sum(1 for name in result.files if name.startswith("manifests/"))
    print(f"plan {environment}: {len(fleet.servers)} servers in {len(fleet.namespaces)} namespaces")
    print(f"  {len(result.registrations)} resources, {manifests} manifest files, {result.seconds:.2f}s")
    width = max((len(kind) for kind in result.counts), default=0)
    for kind, count in sorted(result.counts.items()):
        print(f"  {kind:<{width}}  {count}")
    print(f"wrote {shown_out}/ (policy review: policy-report.md, .sarif, .junit.xml)")
    advisory = len(result.violations) - len(result.blocking)
    mandatory = f"{len(result.blocking)} mandatory"
    echo(
        "policy review: ", (mandatory, BAD if result.blocking else GOOD), f", {advisory} advisory violations"
    )
    if result.blocking:
        echo(
            ("error:", ERROR),
            f" {len(result.blocking)} mandatory policy violations in {environment}:",
            err=True,
        )
        for violation in result.blocking:
            echo(f"  {violation.describe()}", err=True)
        raise typer.Exit(EXIT_INVALID)
