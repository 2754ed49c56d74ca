"""Load `catalog/servers/*.yaml`: every file validated, every problem reported at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcpfleet.catalog.models import Server
from mcpfleet.errors import InputProblem, InvalidInput, display_path
from mcpfleet.validation import validate_document
from mcpfleet.yamlfile import YamlError, read_yaml

SERVERS_DIR = "servers"


@dataclass(frozen=True)
class CatalogEntry:
    """A validated server and the file it came from."""

    server: Server
    file: str


@dataclass(frozen=True)
class Catalog:
    """The whole catalog, sorted by server name."""

    root: Path
    entries: tuple[CatalogEntry, ...]

    @property
    def servers(self) -> tuple[Server, ...]:
        return tuple(entry.server for entry in self.entries)

    def by_name(self) -> dict[str, Server]:
        return {entry.server.name: entry.server for entry in self.entries}


# The plan validates the catalog, then runs the program, which loads it again: the same files, unchanged,
# give the same (immutable) catalog without parsing a thousand files twice.
_last_loaded: tuple[tuple[object, ...], Catalog] | None = None


def load_catalog(root: Path) -> Catalog:
    """Load and validate every server file under root/servers; raise InvalidInput listing all problems."""
    global _last_loaded
    servers_dir = root / SERVERS_DIR
    shown_dir = display_path(servers_dir)
    if not servers_dir.is_dir():
        raise InvalidInput(
            [InputProblem(shown_dir, None, None, "catalog folder not found (expected servers/*.yaml)")]
        )
    files = sorted(servers_dir.glob("*.yaml")) + sorted(servers_dir.glob("*.yml"))
    stats = ((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    signature = (root.resolve(), Path.cwd(), *stats)
    if _last_loaded is not None and _last_loaded[0] == signature:
        return _last_loaded[1]
    catalog = _load(root, files, shown_dir)
    _last_loaded = (signature, catalog)
    return catalog


def _load(root: Path, files: list[Path], shown_dir: str) -> Catalog:
    problems: list[InputProblem] = []
    if not files:
        problems.append(InputProblem(shown_dir, None, None, "no server files (*.yaml) found"))

    entries: list[CatalogEntry] = []
    for path in files:
        shown = display_path(path)
        try:
            document = read_yaml(path, shown)
        except YamlError as exc:
            problems.append(exc.problem)
            continue
        if not isinstance(document.data, dict):
            kind = type(document.data).__name__.replace("NoneType", "null")
            problems.append(
                InputProblem(shown, 1, None, f"expected a mapping of fields at the top level, found a {kind}")
            )
            continue
        server, found = validate_document(Server, document, shown)
        problems.extend(found)
        if server is None:
            continue
        if path.stem != server.name:
            problems.append(
                InputProblem(
                    shown,
                    document.line_of(("name",)),
                    "name",
                    f"must match the file name: name is {server.name!r}, file is {path.name!r}",
                )
            )
        entries.append(CatalogEntry(server, shown))

    first_file: dict[str, str] = {}
    for entry in entries:
        other = first_file.setdefault(entry.server.name, entry.file)
        if other != entry.file:
            problems.append(
                InputProblem(entry.file, None, "name", f"{entry.server.name!r} is already used by {other}")
            )
    if problems:
        raise InvalidInput(problems)
    entries.sort(key=lambda entry: entry.server.name)
    return Catalog(root, tuple(entries))
