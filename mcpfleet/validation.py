"""Turn a YAML document into a model, reporting every problem with its file, line and field.

Each problem points at the line of the field it is about (a model's own checks name their field through
`mcpfleet.errors.FieldErrors`), says it in plain words (mcpfleet.messages), and for an unknown field
says where a field of that name belongs or which known field is nearest.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from mcpfleet.errors import FieldErrors, InputProblem
from mcpfleet.messages import plain
from mcpfleet.yamlfile import Path_, YamlDocument

M = TypeVar("M", bound=BaseModel)

# How many places a misplaced field is said to belong to, at most (the shallowest ones).
_MAX_HOMES = 3


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
        return None, problems_from(exc, document, shown_as, prefix, model)


def problems_from(
    exc: ValidationError,
    document: YamlDocument,
    shown_as: str,
    prefix: Path_ = (),
    model: type[BaseModel] | None = None,
) -> list[InputProblem]:
    """Every error of exc as a problem of the file; model (the one validated at prefix) lets unknown
    fields be answered with where they belong."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
        found = error.get("ctx", {}).get("error")
        if error["type"] == "value_error" and isinstance(found, FieldErrors):
            for path, message in found.found:
                problems.append(_problem(document, shown_as, (*prefix, *loc, *path), message))
            continue
        if error["type"] == "extra_forbidden" and model is not None:
            message = unknown_field(model, loc)
        else:
            message = plain(error)
            if any(part == "[key]" for part in error["loc"]):
                message = f"the name {message}"
        problems.append(_problem(document, shown_as, (*prefix, *loc), message))
    return problems


def _problem(document: YamlDocument, shown_as: str, path: Path_, message: str) -> InputProblem:
    return InputProblem(shown_as, line_of(document, path), dotted(path) or None, message)


def line_of(document: YamlDocument, path: Path_) -> int | None:
    """The line of path, else of its closest parent in the file; never the document's own first line,
    which is only where its first field happens to be (a `$schema:` line, say)."""
    for end in range(len(path), 0, -1):
        line = document.lines.get(path[:end])
        if line is not None:
            return line
    return None


def _is_union_tag(part: str | int) -> bool:
    # pydantic names validator wrappers ("function-after[...]") and dict keys ("[key]") in loc; they are
    # not fields.
    return isinstance(part, str) and "[" in part


def dotted(path: Path_) -> str:
    """('secrets', 0, 'key') -> 'secrets[0].key', as every message names a field."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# --- unknown fields: where a field of that name belongs, or the nearest known name -------------------


def unknown_field(root: type[BaseModel], loc: Path_) -> str:
    """What to say of the unknown field at loc (relative to root): misplaced, misspelt, or unknown."""
    name = str(loc[-1])
    here = _model_at(root, loc[:-1])
    known = _aliases(here) if here is not None else []
    folded = {_fold(field): field for field in known}
    if _fold(name) in folded:
        return f"unknown field: did you mean `{folded[_fold(name)]}`? (fields are written in camelCase)"
    # The model here does not declare it (or it would not be unknown): every home is elsewhere.
    homes = _homes(root).get(name, [])
    if homes:
        more = " (among others)" if len(homes) > _MAX_HOMES else ""
        return (
            f"unknown field here: `{name}` belongs {_places(homes[:_MAX_HOMES])}{more}; check its indentation"
        )
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
    if close:
        return f"unknown field: did you mean `{close[0]}`?"
    anywhere = difflib.get_close_matches(name, list(_homes(root)), n=1, cutoff=0.8)
    if anywhere:
        return f"unknown field: did you mean `{anywhere[0]}`, {_place(_homes(root)[anywhere[0]][0])}?"
    if known:
        return f"unknown field: the fields here are {', '.join(sorted(known))}"
    return "unknown field"


def _fold(text: str) -> str:
    return re.sub(r"[-_]", "", text).lower()


def _place(home: tuple[str, ...]) -> str:
    return _places([home])


def _places(homes: list[tuple[str, ...]]) -> str:
    """'at the top level or under `a`, `b` or `c`'."""
    named = [f"`{_template(home)}`" for home in homes if home]
    under = f"under {', '.join(named[:-1])} or {named[-1]}" if len(named) > 1 else f"under {''.join(named)}"
    if len(named) < len(homes):
        return f"at the top level or {under}" if named else "at the top level"
    return under


def _template(home: tuple[str, ...]) -> str:
    """('environments', '<name>', 'image') -> 'environments.<name>.image'; lists as `egress[]`."""
    text = ""
    for part in home:
        text += part if part == "[]" else (f".{part}" if text else part)
    return text


def _aliases(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(root: type[BaseModel], loc: Path_) -> type[BaseModel] | None:
    """The model that validates the mapping at loc under root, if one does."""
    annotation: Any = root
    for part in loc:
        annotation = _inner(annotation, part)
        if annotation is None:
            return None
    return _as_model(annotation)


def _inner(annotation: Any, part: str | int) -> Any:
    """The annotation of what part selects inside a value of annotation (a model, list or dict)."""
    for option in _options(annotation):
        model = _as_model(option)
        if model is not None and isinstance(part, str):
            for name, info in model.model_fields.items():
                if part in (info.alias, name):
                    return info.annotation
        origin = get_origin(option)
        if origin is list and isinstance(part, int):
            return get_args(option)[0]
        if origin is dict and isinstance(part, str):
            return get_args(option)[1]
    return None


def _options(annotation: Any) -> list[Any]:
    """The types a value of annotation may take: unions and Annotated unwrapped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _options(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [inner for arg in get_args(annotation) for inner in _options(arg)]
    return [annotation]


def _as_model(annotation: Any) -> type[BaseModel] | None:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


@functools.cache
def _homes(root: type[BaseModel]) -> dict[str, list[tuple[str, ...]]]:
    """Every field name under root, with the places (as templates) whose model declares it, shallowest
    first: `port` -> [('transport',)], `cpu` -> [('resources', 'requests'), ...]."""
    homes: dict[str, list[tuple[str, ...]]] = {}

    def walk(model: type[BaseModel], place: tuple[str, ...], seen: frozenset[type[BaseModel]]) -> None:
        for name, info in model.model_fields.items():
            homes.setdefault(info.alias or name, []).append(place)
        for name, info in model.model_fields.items():
            for inner, steps in _nested(info.annotation):
                if inner not in seen:
                    walk(inner, (*place, info.alias or name, *steps), seen | {inner})

    walk(root, (), frozenset({root}))
    for places in homes.values():
        places.sort(key=len)  # shallowest first, then in the models' order
    return homes


def _nested(annotation: Any) -> list[tuple[type[BaseModel], tuple[str, ...]]]:
    """The models inside annotation, with the steps to reach one: () direct, ('[]',) list items,
    ('<name>',) dict values."""
    found: list[tuple[type[BaseModel], tuple[str, ...]]] = []
    for option in _options(annotation):
        model = _as_model(option)
        if model is not None:
            found.append((model, ()))
            continue
        origin = get_origin(option)
        if origin is list:
            found += [(inner, ("[]", *steps)) for inner, steps in _nested(get_args(option)[0])]
        elif origin is dict:
            found += [(inner, ("<name>", *steps)) for inner, steps in _nested(get_args(option)[1])]
    return found
