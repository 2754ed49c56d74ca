"""Strict YAML reading for hand-written inputs: plain data only, with the line of every field.

PyYAML's safe loader already refuses Python object tags; on top of it this module refuses what a
catalog entry never needs and an attacker or a typo could slip in: duplicate keys (YAML says they
are an error, PyYAML keeps the last one silently), anchors and aliases (the road to alias bombs),
and bytes that are not UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mcpfleet.errors import InputProblem

# libyaml's composer is ~10x faster than the pure-Python one; both build the same node graph.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """A parsed file: its data, and the line (1-based) where each path's value starts."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """The line of the deepest known prefix of path: the field itself, or its closest parent."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


class YamlError(Exception):
    """A file that is not the plain YAML we accept."""

    def __init__(self, problem: InputProblem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def read_yaml(path: Path, shown_as: str) -> YamlDocument:
    """Read one YAML document from path; shown_as is how errors name the file."""

    def fail(message: str, line: int | None = None) -> YamlError:
        return YamlError(InputProblem(shown_as, line, None, message))

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise fail(f"not valid UTF-8 (byte {exc.start} is 0x{raw[exc.start]:02x})", line) from None
    if text.startswith("\ufeff"):
        text = text[1:]

    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise fail("file is empty: expected a mapping of fields")
        lines: dict[Path_, int] = {}
        _check_node(node, (), node.start_mark.line + 1, lines, set(), fail)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise fail(f"invalid YAML: {message}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise fail(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return YamlDocument(data, lines)


def _check_node(
    node: yaml.Node,
    path: Path_,
    used_at: int,
    lines: dict[Path_, int],
    seen: set[int],
    fail: Any,
) -> None:
    # The composer resolves an alias to the very node its anchor named, so a node met twice is an
    # alias (its own marks point at the anchor: report where it is used). Stopping there also stops
    # an alias bomb before anything is expanded.
    if id(node) in seen:
        raise fail("anchors and aliases are not allowed: write each value out", used_at)
    seen.add(id(node))
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        keys: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise fail("mapping keys must be plain scalars", key_node.start_mark.line + 1)
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in keys:
                raise fail(f"duplicate key {key!r} (first at line {keys[key]})", line)
            keys[key] = line
            seen.add(id(key_node))
            _check_node(value_node, (*path, key), line, lines, seen, fail)
            lines[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_node(item, (*path, index), node.start_mark.line + 1, lines, seen, fail)
