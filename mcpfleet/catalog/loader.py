"""Load `catalog/servers/*.yaml`: every file validated, every problem reported at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcpfleet.catalog.literals import check_entry, check_text, redact_problems
from mcpfleet.catalog.models import Server, secret_resource_name
from mcpfleet.catalog.secretscan import random_tokens
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


@dataclass(frozen=True)
class _StoreKeyUse:
    """Where an entry references a secret store key."""

    key: str
    server: str
    file: str
    line: int | None
    index: int

    @property
    def field(self) -> str:
        return f"secrets[{self.index}].key"


def _load(root: Path, files: list[Path], shown_dir: str) -> Catalog:
    problems: list[InputProblem] = []
    # Every literal a secret check found, in any file: no message may show one.
    literals: set[str] = set()
    if not files:
        problems.append(InputProblem(shown_dir, None, None, "no server files (*.yaml) found"))

    entries: list[CatalogEntry] = []
    key_uses: list[_StoreKeyUse] = []
    for path in files:
        shown = display_path(path)
        try:
            document = read_yaml(path, shown)
        except YamlError as exc:
            # Not YAML, but it may still hold a pasted secret: refuse that too, and keep it out of the
            # parser's message.
            check = check_text(path.read_bytes().decode("utf-8", errors="replace"), shown)
            problems.extend([exc.problem, *check.problems])
            literals.update(check.literals, random_tokens(exc.problem.message))
            continue
        check = check_entry(document, path.read_text(encoding="utf-8"), shown)
        problems.extend(check.problems)
        literals.update(check.literals)
        if not isinstance(document.data, dict):
            kind = type(document.data).__name__.replace("NoneType", "null")
            problems.append(
                InputProblem(shown, 1, None, f"expected a mapping of fields at the top level, found a {kind}")
            )
            continue
        server, found = validate_document(Server, document, shown)
        problems.extend(p for p in found if p.field not in check.reported)
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
        key_uses.extend(
            _StoreKeyUse(ref.key, server.name, shown, document.line_of(("secrets", i, "key")), i)
            for i, ref in enumerate(server.secrets)
            if ref.key not in literals
        )

    first_file: dict[str, str] = {}
    for entry in entries:
        other = first_file.setdefault(entry.server.name, entry.file)
        if other != entry.file:
            problems.append(
                InputProblem(entry.file, None, "name", f"{entry.server.name!r} is already used by {other}")
            )
    problems.extend(_shared_store_keys(key_uses))
    if problems:
        raise InvalidInput(redact_problems(problems, literals))
    entries.sort(key=lambda entry: entry.server.name)
    return Catalog(root, tuple(entries))


def _shared_store_keys(uses: list[_StoreKeyUse]) -> list[InputProblem]:
    """A store key belongs to one server: in the cloud it is the Secrets Manager secret that server's
    program creates (`<prefix><env>/<key>`) and only that server's IAM role may read. Two references
    would create one secret twice, and removing either server would delete what the other reads. One
    catalog serves every environment, so this holds whatever environments the servers run in."""
    by_key: dict[str, list[_StoreKeyUse]] = {}
    for use in uses:
        by_key.setdefault(use.key, []).append(use)
    problems = []
    for key, same in by_key.items():
        for use in same:
            earlier = [o for o in same if o.server == use.server and o.index < use.index]
            others = [o for o in same if o.server != use.server]
            if earlier:
                problems.append(
                    InputProblem(
                        use.file,
                        use.line,
                        use.field,
                        f"store key {key!r} is already referenced by {earlier[0].field}: one reference per"
                        " key (each becomes one secret in the store and one variable of the server)",
                    )
                )
            elif others:
                where = ", ".join(f"{o.server} ({o.file}:{o.line}, {o.field})" for o in others)
                problems.append(
                    InputProblem(
                        use.file,
                        use.line,
                        use.field,
                        f"store key {key!r} is also referenced by {where}: each key is one secret in the"
                        " store, created and read by one server only. Give each server its own key (e.g."
                        f" `{use.server}/<name>`) and store the value under each",
                    )
                )
    # Distinct keys can still give two servers' cloud secrets one Pulumi name (see secret_resource_name).
    by_name: dict[str, list[_StoreKeyUse]] = {}
    for use in uses:
        by_name.setdefault(secret_resource_name(use.server, use.key), []).append(use)
    for name, same in by_name.items():
        for use in same:
            others = [o for o in same if o.key != use.key]
            if others:
                where = ", ".join(f"{o.server}'s {o.key!r} ({o.file}:{o.line}, {o.field})" for o in others)
                problems.append(
                    InputProblem(
                        use.file,
                        use.line,
                        use.field,
                        f"store key {use.key!r} of {use.server} and {where} would both create the cloud"
                        f" secret resource {name!r}: rename one of the keys",
                    )
                )
    return problems
