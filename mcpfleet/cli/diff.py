"""`mcpfleet diff`: what the working tree changes in each environment, against a base git revision.

The base is planned from its own catalog and stack files, exported with `git archive` into a temporary
folder, but with the working tree's program (components, policies, this package). A worktree checkout
would also work, but only the inputs differ between the revisions we review, and exporting two folders
is faster and leaves no worktree to clean up in the repository. The consequence: a change to the
program itself shows up as a resource change, which is what a reviewer wants to see.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from mcpfleet.cli.app import ENV_CHOICES, EXIT_INVALID, CatalogOption, EnvChoice, StacksOption, app, refuse
from mcpfleet.cli.console import error
from mcpfleet.diff import (
    PROTECTED_ENVIRONMENTS,
    Decommission,
    DiffReport,
    EnvDiff,
    Snapshot,
    diff_environment,
    parse_decommission,
    render_markdown,
    report_json,
    snapshot,
)
from mcpfleet.errors import InputProblem, InvalidInput, display_path
from mcpfleet.model import ENVIRONMENTS, EnvName
from mcpfleet.stacks.loader import stack_file
from mcpfleet.yamlfile import YamlError, read_yaml


@app.command()
def diff(
    env: Annotated[
        list[EnvChoice],
        typer.Option(
            "--env",
            "-e",
            metavar="ENV",
            help=f"Environment to compare ({ENV_CHOICES}); repeat for several.",
            show_default=False,
        ),
    ],
    base: Annotated[
        str,
        typer.Option(
            "--base",
            metavar="REF",
            help="Git revision to compare against, e.g. origin/main.",
            show_default=False,
        ),
    ],
    catalog: CatalogOption = Path("catalog"),
    stacks: StacksOption = Path("stacks"),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE", help="Write the report here \\[default: stdout]", dir_okay=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Write JSON instead of markdown.")] = False,
    append: Annotated[
        list[Path] | None,
        typer.Option(
            "--append",
            metavar="FILE",
            help="Markdown file to add after the report (e.g. a policy report); repeatable.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Servers and resources added, changed and removed per environment; refuses unmarked prod removals."""
    environments: list[EnvName] = [e for e in ENVIRONMENTS if e in {choice.value for choice in env}]
    try:
        report = compare(environments, base, catalog, stacks)
    except InvalidInput as exc:
        raise refuse(exc) from None

    text = (json.dumps(report_json(report), indent=2) + "\n") if as_json else render_markdown(report)
    if not as_json:
        # One file for one PR comment: CI runs our command rather than shell glue to assemble it.
        for extra in append or []:
            shown = display_path(extra)
            text += "\n" + (
                extra.read_text(encoding="utf-8") if extra.is_file() else f"_{shown} was not written._\n"
            )
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {display_path(out)}", file=sys.stderr)
    unapproved = report.unapproved_removals
    if unapproved:
        for environment, removal in unapproved:
            error(
                f"{removal.server!r} is removed from {environment} without a decommission marker:"
                f" keep {display_path(catalog / 'servers' / (removal.server + '.yaml'))} with"
                f' `decommissioned: {{environments: [{environment}], reason: ..., date: "YYYY-MM-DD"}}`'
            )
        raise typer.Exit(EXIT_INVALID)


def compare(environments: list[EnvName], base: str, catalog: Path, stacks: Path) -> DiffReport:
    """Plan both revisions in each environment and compare them."""
    from mcpfleet.plan.run import plan  # the Pulumi SDK loads only for commands that need it

    with tempfile.TemporaryDirectory(prefix="mcpfleet-diff-") as scratch:
        base_catalog, base_stacks = export_base(base, catalog, stacks, Path(scratch))
        results: list[EnvDiff] = []
        for environment in environments:
            head = plan(environment, catalog, stacks, None)
            head_snapshot = snapshot(head.fleet, head.registrations)
            base_snapshot = Snapshot()
            # A base without the catalog or this environment's stack file had nothing running there.
            if base_catalog and base_stacks and stack_file(base_stacks, environment).exists():
                try:
                    old = plan(environment, base_catalog, base_stacks, None)
                except InvalidInput as exc:
                    raise InvalidInput(_as_base(exc.problems, Path(scratch), base)) from None
                base_snapshot = snapshot(old.fleet, old.registrations)
            removed = base_snapshot.servers.keys() - head_snapshot.servers.keys()
            markers = read_markers(catalog, removed) if environment in PROTECTED_ENVIRONMENTS else {}
            results.append(diff_environment(environment, base_snapshot, head_snapshot, markers))
    return DiffReport(base, tuple(results))


def read_markers(catalog: Path, names: set[str]) -> dict[str, Decommission]:
    """Decommission markers of the named servers, read from the working tree's raw entries.

    Raw YAML rather than the loaded model, so the check does not depend on how the catalog models
    spell the field; a malformed marker is an input error naming the file and field.
    """
    markers: dict[str, Decommission] = {}
    problems: list[InputProblem] = []
    for name in sorted(names):
        path = catalog / "servers" / f"{name}.yaml"
        if not path.is_file():
            continue
        shown = display_path(path)
        try:
            document = read_yaml(path, shown)
        except YamlError as exc:
            problems.append(exc.problem)
            continue
        marker, found = parse_decommission(document.data)
        line = document.line_of(("decommissioned",))
        problems.extend(InputProblem(shown, line, None, message) for message in found)
        if marker is not None:
            markers[name] = marker
    if problems:
        raise InvalidInput(problems)
    return markers


def export_base(base: str, catalog: Path, stacks: Path, into: Path) -> tuple[Path | None, Path | None]:
    """Write the base revision's catalog and stack folders under into; None for one the base lacks."""
    top = Path(_git(["rev-parse", "--show-toplevel"], cwd=Path.cwd()).decode().strip())
    commit = (
        _git(["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], cwd=top, what=base).decode().strip()
    )
    found: list[Path | None] = []
    members: list[str] = []
    for folder in (catalog, stacks):
        try:
            relative = folder.resolve().relative_to(top.resolve()).as_posix()
        except ValueError:
            raise InvalidInput(
                [InputProblem(display_path(folder), None, None, f"not inside the git repository {top}")]
            ) from None
        exists = subprocess.run(
            ["git", "cat-file", "-e", f"{commit}:{relative}"], cwd=top, capture_output=True, check=False
        )
        found.append(into / relative if exists.returncode == 0 else None)
        if exists.returncode == 0:
            members.append(relative)
    if members:
        archive = _git(["archive", "--format=tar", commit, "--", *members], cwd=top)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            extract_inside(tar, into)
    return found[0], found[1]


def extract_inside(tar: tarfile.TarFile, into: Path) -> None:
    """Unpack a `git archive` of the base revision, refusing any member or link that leaves `into`."""
    for member in tar.getmembers():
        for name in (member.name, member.linkname):
            if name and (Path(name).is_absolute() or ".." in Path(name).parts):
                message = f"the base revision holds a path that leaves the repository: {name}"
                raise InvalidInput([InputProblem("--base", None, None, message)])
    if hasattr(tarfile, "data_filter"):
        tar.extractall(into, filter="data")
    else:  # Python before 3.11.4 (Debian 12's 3.11.2) has no filters: every member was checked above
        tar.extractall(into)


def _git(args: list[str], cwd: Path, what: str | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise InvalidInput([InputProblem("git", None, None, "git is not installed")]) from None
    if done.returncode != 0:
        if what is not None:
            message = f"not a commit in this repository: {what!r} (fetch it first, e.g. git fetch origin)"
        else:
            message = done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed"
        raise InvalidInput([InputProblem("--base" if what is not None else "git", None, None, message)])
    return done.stdout


def _as_base(problems: list[InputProblem], scratch: Path, base: str) -> list[InputProblem]:
    """Name the base revision's files as `<ref>:<path>`, not by the temporary folder they sit in."""
    prefixes = sorted({f"{scratch}/", f"{scratch.resolve()}/"}, key=len, reverse=True)
    renamed = []
    for problem in problems:
        file = problem.file
        for prefix in prefixes:
            if file.startswith(prefix):
                file = f"{base}:{file[len(prefix) :]}"
                break
        renamed.append(InputProblem(file, problem.line, problem.field, problem.message))
    return renamed
