"""`mcpfleet pin`: write image digests (from the registries) or tool hashes (from running servers) into the
catalog, or check that the pinned digests still match their tags."""

from __future__ import annotations

import datetime
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcpfleet.catalog.loader import Catalog, load_catalog
from mcpfleet.cli.app import EXIT_INVALID, CatalogOption, EnvOption, StacksOption, app, refuse
from mcpfleet.cli.verify import _direct_urls, _http_url
from mcpfleet.errors import InvalidInput, display_path
from mcpfleet.model import EnvName

if TYPE_CHECKING:
    from mcpfleet.pin.entries import Entries
    from mcpfleet.pin.images import ImagePin
    from mcpfleet.pin.tools import ServerTools


def _fail(lines: Sequence[str]) -> typer.Exit:
    for line in lines:
        print(line, file=sys.stderr)
    return typer.Exit(EXIT_INVALID)


def _write(entries: Entries, dry_run: bool) -> None:
    """Validate every changed entry, then show (dry run) or write them all at once."""
    from mcpfleet.pin.edit import write_all
    from mcpfleet.pin.entries import check_texts

    changed = entries.changed()
    if not changed:
        print("nothing to write: the catalog already holds these pins")
        return
    problems = check_texts(changed)
    if problems:
        raise _fail(
            ["error: the pinned entries would not load; nothing written:", *(f"  {p}" for p in problems)]
        )
    for entry in changed.values():
        if not entry.layout_kept:
            print(f"note: {entry.shown}: indentation rewritten in the catalog's layout (2, lists at 2)")
    if dry_run:
        for entry in changed.values():
            sys.stdout.writelines(
                difflib.unified_diff(
                    entry.original.splitlines(keepends=True),
                    entry.text.splitlines(keepends=True),
                    f"a/{entry.shown}",
                    f"b/{entry.shown}",
                )
            )
        print(f"dry run: {len(changed)} file{'s' if len(changed) != 1 else ''} would change, none written")
        return
    try:
        write_all({path: entry.text for path, entry in changed.items()})
    except OSError as exc:
        raise _fail([f"error: cannot write the catalog ({exc.strerror or exc}); nothing written"]) from None
    print(f"wrote {', '.join(entry.shown for entry in changed.values())}")


def _ref(pin: ImagePin) -> str:
    image = pin.target.image
    return f"{image.repository}:{image.tag}" if image.tag else image.repository


def _image_line(pin: ImagePin, width: int) -> str:
    head = f"  {pin.target.server:<{width}}  {pin.status:<9}  {_ref(pin)}"
    if pin.status == "failed":
        return f"{head}: {pin.error}"
    if pin.status == "no tag":
        return f"{head}: pinned by digest only, no tag to resolve"
    assert pin.resolved is not None
    new = pin.resolved.digest
    if pin.status in ("updated", "moved"):
        return f"{head}  {pin.previous} -> {new}  ({pin.target.field})"
    return f"{head}  {new}  ({pin.target.field})"


def _pin_images(
    catalog: Catalog, environment: EnvName, check: bool, dry_run: bool, cacert: Path | None, timeout: float
) -> None:
    from mcpfleet.pin.entries import Entries
    from mcpfleet.pin.images import apply_pins, image_targets, registry_resolver, resolve_pins

    targets = image_targets(catalog, environment)
    if not targets:
        print(f"pin {environment}: no server is enabled in {environment}")
        return
    pins = resolve_pins(targets, registry_resolver(cacert, timeout), check=check)
    counts: dict[str, int] = {}
    for pin in pins:
        counts[pin.status] = counts.get(pin.status, 0) + 1
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    verb = "pin --check" if check else "pin"
    print(f"{verb} {environment}: {len(pins)} image{'s' if len(pins) != 1 else ''}: {summary}")
    width = max(len(pin.target.server) for pin in pins)
    for pin in pins:
        print(_image_line(pin, width))

    failed = [pin.target.server for pin in pins if pin.status == "failed"]
    if failed:
        raise _fail([f"error: not resolved, so nothing written: {', '.join(failed)} (reasons above)"])
    if check:
        moved = [pin for pin in pins if pin.status == "moved"]
        unpinned = [pin.target.server for pin in pins if pin.status == "unpinned"]
        if unpinned:
            print(f"not pinned (run `mcpfleet pin --env {environment}`): {', '.join(unpinned)}")
        if moved:
            raise _fail(
                [
                    f"error: {len(moved)} tag{'s' if len(moved) != 1 else ''} moved since pinned:",
                    *(
                        f"  {pin.target.server}: {_ref(pin)}"
                        f" pinned {pin.previous}, now {pin.resolved.digest if pin.resolved else '?'}"
                        for pin in moved
                    ),
                ]
            )
        return
    entries = Entries(catalog)
    apply_pins(entries, pins, datetime.datetime.now(datetime.UTC).date())
    _write(entries, dry_run)


def _tool_lines(result: ServerTools) -> list[str]:
    if result.error is not None:
        return [f"  {result.server}: FAILED: {result.error}"]
    lines = [f"  {result.server}:"]
    for pin in result.pins:
        if pin.status == "updated":
            lines.append(f"    {pin.name}: updated {pin.previous} -> {pin.sha256}")
        else:
            lines.append(f"    {pin.name}: {pin.status} {pin.sha256}")
    if result.not_declared:
        lines.append(f"    listed, not declared (add to `tools` to pin): {', '.join(result.not_declared)}")
    if result.not_listed:
        lines.append(f"    declared, not listed by the server: {', '.join(result.not_listed)}")
    return lines


def _pin_tools(
    catalog: Catalog,
    environment: EnvName,
    stacks: Path,
    endpoint: str,
    token_file: Path | None,
    only: Sequence[str],
    direct: dict[str, str],
    timeout: float,
    dry_run: bool,
) -> None:
    from mcpfleet.fleet import Fleet, resolve_fleet
    from mcpfleet.pin.entries import Entries
    from mcpfleet.pin.tools import apply_tool_pins, server_tools
    from mcpfleet.stacks.loader import load_stack_config, stack_file
    from mcpfleet.verify import Limits, TokenFileError, load_tokens, verify_fleet

    try:
        _, settings = load_stack_config(stacks, environment)
        fleet = resolve_fleet(catalog, environment, settings, display_path(stack_file(stacks, environment)))
    except InvalidInput as exc:
        raise refuse(exc) from None
    enabled = {server.name for server in fleet.servers}
    unknown = sorted((set(only) | set(direct)) - enabled)
    if unknown:
        raise typer.BadParameter(f"not enabled in {environment}: {', '.join(unknown)}", param_hint="--server")
    if only:
        fleet = Fleet(fleet.environment, fleet.settings, tuple(s for s in fleet.servers if s.name in only))
    tokens = None
    if token_file is not None:
        try:
            tokens = load_tokens(token_file)
        except TokenFileError as exc:
            raise _fail([f"error: {exc}"]) from None
    report = verify_fleet(fleet, endpoint, tokens, limits=Limits(timeout, min(5.0, timeout)), direct=direct)
    results = [server_tools(server) for server in report.servers]
    print(f"pin --tools {environment}: {len(results)} server{'s' if len(results) != 1 else ''} listed")
    for result in results:
        for line in _tool_lines(result):
            print(line)
    failed = [result for result in results if result.error is not None]
    if failed:
        raise _fail(
            [
                f"error: {len(failed)} server{'s' if len(failed) != 1 else ''} not listed; nothing written:",
                *(f"  {result.server}: {result.error}" for result in failed),
            ]
        )
    entries = Entries(catalog)
    apply_tool_pins(entries, results)
    _write(entries, dry_run)


@app.command()
def pin(
    env: EnvOption,
    catalog: CatalogOption = Path("catalog"),
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 when a pinned tag now resolves to another digest."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the changes to the catalog as a diff; write nothing.")
    ] = False,
    cacert: Annotated[
        Path | None,
        typer.Option(
            "--cacert",
            metavar="FILE",
            help="PEM file of the CAs that sign a private registry's certificate (and its token service's).",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.1, max=600.0, metavar="SECONDS", help="Seconds per request, at most."
        ),
    ] = 20.0,
    tools: Annotated[
        bool,
        typer.Option(
            "--tools",
            help="Pin tool hashes (tools[].sha256) from the running servers at --endpoint instead of images.",
        ),
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            metavar="URL",
            help="With --tools: the gateway's base URL; servers are reached at <URL>/servers/<name>/mcp.",
            show_default=False,
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            metavar="FILE",
            help="With --tools: one bearer token, or a YAML/JSON mapping of server name to token.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    server: Annotated[
        list[str] | None,
        typer.Option(
            "--server",
            metavar="NAME",
            help="With --tools: pin only this server (repeatable).",
            show_default=False,
        ),
    ] = None,
    stacks: StacksOption = Path("stacks"),
    server_url: Annotated[
        list[str] | None,
        typer.Option(
            "--server-url",
            hidden=True,
            help="NAME=URL: reach NAME at URL instead of through the gateway (tests, debugging).",
        ),
    ] = None,
) -> None:
    """Resolve each enabled server's image tag to its digest and write it into the catalog (image.digest,
    image.digestSource); with --tools, pin tool hashes from running servers."""
    environment: EnvName = env.value
    if tools:
        if endpoint is None:
            raise typer.BadParameter("--tools needs the gateway's URL", param_hint="--endpoint")
        if check:
            raise typer.BadParameter(
                "tool pins are checked by `mcpfleet verify --env E --endpoint URL`", param_hint="--check"
            )
        if cacert is not None:
            raise typer.BadParameter("only for registries (image pins)", param_hint="--cacert")
    elif endpoint is not None or token_file is not None or server or server_url:
        raise typer.BadParameter(
            "--endpoint, --token-file and --server go with --tools", param_hint="--endpoint"
        )
    if check and dry_run:
        raise typer.BadParameter("--check never writes; drop --dry-run", param_hint="--dry-run")
    try:
        loaded = load_catalog(catalog)
    except InvalidInput as exc:
        raise refuse(exc) from None

    if tools:
        assert endpoint is not None
        _pin_tools(
            loaded,
            environment,
            stacks,
            _http_url(endpoint, "--endpoint"),
            token_file,
            server or [],
            _direct_urls(server_url or []),
            timeout,
            dry_run,
        )
    else:
        _pin_images(loaded, environment, check, dry_run, cacert, timeout)
