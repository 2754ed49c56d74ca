"""The catalog entry files a pin edits: found from the loaded catalog, checked before anything is written."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from mcpfleet.catalog.loader import SERVERS_DIR, Catalog
from mcpfleet.catalog.models import Server
from mcpfleet.errors import InputProblem
from mcpfleet.pin.edit import EntryFile
from mcpfleet.validation import validate_document
from mcpfleet.yamlfile import YamlError, read_yaml


def entry_path(catalog: Catalog, server: str) -> tuple[Path, str]:
    """The file of server's entry, and how messages name it."""
    shown = next(entry.file for entry in catalog.entries if entry.server.name == server)
    return catalog.root / SERVERS_DIR / Path(shown).name, shown


class Entries:
    """The entry files opened so far in one run, each opened once however many pins it receives."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._open: dict[str, EntryFile] = {}

    def open(self, server: str) -> EntryFile:
        if server not in self._open:
            path, shown = entry_path(self.catalog, server)
            self._open[server] = EntryFile(path, shown)
        return self._open[server]

    def changed(self) -> dict[Path, EntryFile]:
        return {entry.path: entry for entry in self._open.values() if entry.changed}


def check_texts(changed: Mapping[Path, EntryFile]) -> list[InputProblem]:
    """Validate each new text as the catalog loader would: a pin never writes an entry that fails to load."""
    problems: list[InputProblem] = []
    with tempfile.TemporaryDirectory(prefix="mcpfleet-pin-") as scratch:
        for path, entry in changed.items():
            candidate = Path(scratch) / path.name
            candidate.write_text(entry.text, encoding="utf-8")
            try:
                document = read_yaml(candidate, entry.shown)
            except YamlError as exc:
                problems.append(exc.problem)
                continue
            _, found = validate_document(Server, document, entry.shown)
            problems.extend(found)
    return problems
