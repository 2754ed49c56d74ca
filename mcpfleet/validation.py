"""Turn a YAML document into a model, reporting every problem with its file, line and field."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from mcpfleet.errors import InputProblem
from mcpfleet.yamlfile import Path_, YamlDocument

M = TypeVar("M", bound=BaseModel)


def validate_document(
    model: type[M], document: YamlDocument, shown_as: str, prefix: Path_ = ()
) -> tuple[M | None, list[InputProblem]]:
    """Validate document.data (or the part at prefix) as model; problems are located in the file."""
    data = document.data
    for key in prefix:
        data = data[key]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from(exc, document, shown_as, prefix)


def problems_from(
    exc: ValidationError, document: YamlDocument, shown_as: str, prefix: Path_ = ()
) -> list[InputProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
        path = (*prefix, *loc)
        field = dotted(path) or None
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling against catalog/schema.json)"
        elif error["type"] == "missing":
            message = "required field is missing"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(InputProblem(shown_as, document.line_of(path), field, message))
    return problems


def _is_union_tag(part: str | int) -> bool:
    # pydantic names validator wrappers ("function-after[...]") in loc; they are not fields.
    return isinstance(part, str) and "[" in part


def dotted(path: Path_) -> str:
    """('secrets', 0, 'key') -> 'secrets[0].key', as every message names a field."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
