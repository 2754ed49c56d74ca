"""Edit catalog entries in place: set a field's value and keep every comment, quote and indentation.

ruamel.yaml reads and writes the file as a round trip. Its one habit that would move text: comments
after a mapping's last key belong to that key, so keys added after it would land below the comment;
the comment moves to the new last key instead, where it was written (before what follows).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.tokens import CommentToken

# (mapping, sequence, offset): the layouts tried, the catalog's own first. `tools:` then `  - name:` is
# (2, 4, 2); `tools:` then `- name:` is (2, 2, 0).
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (3, 3, 0))


class EditError(Exception):
    """The file cannot be edited: the message names it."""


def _yaml(layout: tuple[int, int, int]) -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    # Never fold long lines (descriptions, URLs) that the author kept on one.
    yaml.width = 1_000_000
    mapping, sequence, offset = layout
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _dump(yaml: YAML, data: Any) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


class EntryFile:
    """One catalog entry opened for a round-trip edit; `text` is the file as it would be written."""

    def __init__(self, path: Path, shown: str) -> None:
        self.path = path
        self.shown = shown
        try:
            self.original = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise EditError(f"{shown}: cannot read ({type(exc).__name__}: {exc})") from None
        self.layout_kept = False
        for layout in _LAYOUTS:
            yaml = _yaml(layout)
            try:
                data = yaml.load(self.original)
            except YAMLError as exc:
                raise EditError(f"{shown}: not YAML the editor can read ({exc.__class__.__name__})") from None
            if _dump(yaml, data) == self.original:
                self.layout_kept = True
                break
        else:
            # No layout reproduces the file byte for byte: write with the catalog's own, and say so.
            yaml = _yaml(_LAYOUTS[0])
            data = yaml.load(self.original)
        if not isinstance(data, CommentedMap):
            raise EditError(f"{shown}: expected a mapping of fields at the top level")
        self._yaml = yaml
        self.data: CommentedMap = data

    @property
    def text(self) -> str:
        return _dump(self._yaml, self.data)

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def mapping(self, path: Sequence[str | int]) -> CommentedMap:
        """The mapping at path (keys and list indexes), which must exist."""
        node: Any = self.data
        for part in path:
            node = node[part]
        if not isinstance(node, CommentedMap):
            where = ".".join(str(p) for p in path)
            raise EditError(f"{self.shown}: {where} is not a mapping")
        return node

    def sequence(self, path: Sequence[str | int]) -> CommentedSeq:
        node: Any = self.data
        for part in path:
            node = node[part]
        if not isinstance(node, CommentedSeq):
            where = ".".join(str(p) for p in path)
            raise EditError(f"{self.shown}: {where} is not a list")
        return node


def set_fields(mapping: CommentedMap, values: Mapping[str, Any], after: str) -> None:
    """Give mapping these values: existing keys change in place, new ones follow key `after` in order."""
    new = [(key, value) for key, value in values.items() if key not in mapping]
    for key, value in values.items():
        if key in mapping:
            mapping[key] = value
    if not new:
        return
    keys = list(mapping)
    anchor = after if after in mapping else keys[-1]
    position = keys.index(anchor) + 1
    for offset, (key, value) in enumerate(new):
        mapping.insert(position + offset, key, value)
    _move_trailing_comment(mapping, anchor, new[-1][0])


def _move_trailing_comment(mapping: CommentedMap, old: str, new: str) -> None:
    """Keep the comment lines that followed old's line after the inserted keys, where they stood."""
    entry = mapping.ca.items.get(old)
    if not entry or len(entry) < 3 or entry[2] is None:
        return
    token = entry[2]
    own_line, newline, following = token.value.partition("\n")
    if not following:
        return
    if own_line.strip():
        token.value = own_line + newline
    else:
        entry[2] = None
    mapping.ca.items[new] = [None, None, CommentToken("\n" + following, token.start_mark, None), None]


def write_all(texts: Mapping[Path, str]) -> None:
    """Write every file or none: all new contents go to temporary files first, then each is renamed over.

    A failure while writing (disk full, permissions) leaves every original untouched."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in texts.items():
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            staged.append((Path(name), path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(OSError):
                Path(name).chmod(path.stat().st_mode & 0o777)
    except OSError:
        for temp, _ in staged:
            with contextlib.suppress(OSError):
                temp.unlink()
        raise
    for temp, target in staged:
        temp.replace(target)
