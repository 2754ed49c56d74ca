"""Input errors that name the file, line and field, so every refusal is actionable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class InputProblem:
    """One thing wrong with one input file."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}"


class InvalidInput(Exception):
    """Raised with every problem found, never just the first one."""

    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.field or ""))
        super().__init__("\n".join(str(p) for p in self.problems))


class FieldErrors(ValueError):
    """Raised by a model's own checks: each finding with the field it is about, so the message points at
    that field's line, not at the mapping that holds it (or, for a whole entry, its first line).

    Paths are relative to the model that raises, in the names the files use (`digestSource`,
    `("tools", 1, "name")`); mcpfleet.validation places them in the file.
    """

    def __init__(self, found: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        self.found = tuple(found)
        super().__init__("; ".join(message for _, message in self.found))


def field_error(message: str, *path: str | int) -> FieldErrors:
    """One finding about the field at path (none: the model itself)."""
    return FieldErrors([(path, message)])


def display_path(path: Path) -> str:
    """A path as users typed it: relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
