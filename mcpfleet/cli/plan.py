"""`mcpfleet plan`: the environment's resources and manifests, offline, in build/<env>/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcpfleet.cli.app import EXIT_INVALID, CatalogOption, EnvOption, StacksOption, app, refuse
from mcpfleet.cli.console import BAD, ERROR, GOOD, echo, interactive, progress
from mcpfleet.errors import InvalidInput, display_path
from mcpfleet.fleet import Fleet
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


# Enough to act on in a terminal; a large fleet's full list is in each server's manifests.
SHOWN_SECRET_COMMANDS = 12


def secret_values_summary(fleet: Fleet) -> list[str]:
    """The secret values the environment's servers read, and the command that puts each: the offline plan
    cannot see a store, so it names them all; `pulumi up` then warns only of those still empty."""
    from components.manifests.secrets import PUT_VALUES_ANNOTATION, put_value_command, set_command

    refs = [(server, ref) for server in fleet.servers for ref in server.spec.secrets]
    if not refs:
        return []
    settings, environment = fleet.settings, fleet.environment
    cloud = settings.cluster.provider == "eks"
    servers = len({server.name for server, _ in refs})
    if cloud:
        lines = [
            f"secret values: {servers} servers read {len(refs)} values from Secrets Manager; pulumi up waits"
            " for none of them, each server's pods start once its values are put:"
        ]
    else:
        lines = [
            f"secret values: {servers} servers read {len(refs)} values from the stack's encrypted config;"
            " pulumi up stops before creating anything while one is missing. Set each with:"
        ]
    for server, ref in refs[:SHOWN_SECRET_COMMANDS]:
        command = (
            put_value_command(settings, environment, ref.key) if cloud else set_command(ref.key, environment)
        )
        lines.append(f"  {command}  # {server.name}: {ref.env}")
    if len(refs) > SHOWN_SECRET_COMMANDS:
        where = (
            f"the {PUT_VALUES_ANNOTATION} annotation of each server's ExternalSecret"
            if cloud
            else "each server's catalog entry (secrets)"
        )
        lines.append(f"  ... and {len(refs) - SHOWN_SECRET_COMMANDS} more: {where}")
    return lines


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
    from mcpfleet.plan.endpoints import summary as endpoints_summary
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
    for line in endpoints_summary(fleet):
        print(line)
    print(f"wrote {shown_out}/ (policy review: policy-report.md, .sarif, .junit.xml; routes: endpoints.json)")
    for line in secret_values_summary(fleet):
        print(line)
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
