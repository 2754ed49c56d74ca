"""`mcpfleet plan`: the environment's resources and manifests, offline, in build/<env>/."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mcpfleet.cli.app import EXIT_INVALID, CatalogOption, EnvOption, StacksOption, app, refuse
from mcpfleet.errors import InvalidInput, display_path
from mcpfleet.model import EnvName


@app.command()
def plan(
    env: EnvOption,
    catalog: CatalogOption = Path("catalog"),
    stacks: StacksOption = Path("stacks"),
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder [default: build/<env>]", file_okay=False)
    ] = None,
) -> None:
    """Run the Pulumi program offline; write manifests/ and resources.json, replacing the old plan at once."""
    from mcpfleet.plan.run import plan as run_plan  # the Pulumi SDK loads only for commands that need it

    environment: EnvName = env.value
    out_dir = out or Path("build") / environment
    try:
        result = run_plan(environment, catalog, stacks, out_dir)
    except InvalidInput as exc:
        raise refuse(exc) from None

    fleet = result.fleet
    manifests = sum(1 for name in result.files if name.startswith("manifests/"))
    print(f"plan {environment}: {len(fleet.servers)} servers in {len(fleet.namespaces)} namespaces")
    print(f"  {len(result.registrations)} resources, {manifests} manifest files, {result.seconds:.2f}s")
    width = max((len(kind) for kind in result.counts), default=0)
    for kind, count in sorted(result.counts.items()):
        print(f"  {kind:<{width}}  {count}")
    print(f"wrote {display_path(out_dir)}/ (policy review: policy-report.md, .sarif, .junit.xml)")
    advisory = len(result.violations) - len(result.blocking)
    print(f"policy review: {len(result.blocking)} mandatory, {advisory} advisory violations")
    if result.blocking:
        print(f"error: {len(result.blocking)} mandatory policy violations in {environment}:", file=sys.stderr)
        for violation in result.blocking:
            print(f"  {violation.describe()}", file=sys.stderr)
        raise typer.Exit(EXIT_INVALID)
