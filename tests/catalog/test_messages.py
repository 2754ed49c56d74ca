"""Messages a person can act on: each points at the line of the field it is about (never the `$schema`
line an entry starts with), says where a misplaced field belongs, suggests the known field nearest a
typo, and says what a field must be in plain words, never in pydantic's (or as a regex)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.catalog.models import Server
from mcpfleet.errors import InputProblem, InvalidInput
from mcpfleet.messages import PATTERN_WORDS
from mcpfleet.stacks.models import Environment
from tests.conftest import minimal_server

# The first lines of the sample entries: an editor hint, then the schema the entry is checked against.
HEAD = "# yaml-language-server: $schema=../schema.json\n$schema: ../schema.json\n"
# pydantic's own phrases (pydantic_core's messages), none of which a person should have to decode.
PYDANTIC_PHRASES = (
    "Input should",
    "Value error",
    "Assertion failed",
    "String should",
    "List should",
    "should match pattern",
    "should have at least",
    "should have at most",
    "Field required",
    "Extra inputs are not permitted",
    "valid dictionary",
    "instance of",
    "after validation",
    "unable to parse",
    "input is too short",
    "should have zero time",
    "greater than or equal",
    "less than or equal",
)
TOKEN = "ghp_" + "Zq8Xw2Lr5Tn7Vb1Kc4Hm6Jd9Fs3Gp0Ya5Ue8"


def entry_text(entry: dict[str, Any]) -> str:
    return HEAD + yaml.safe_dump(entry, sort_keys=False, width=10_000)


def entry(**fields: Any) -> dict[str, Any]:
    """The minimal entry `alpha` with fields replaced or added (its name too)."""
    return {**minimal_server("alpha"), **fields}


def problems_of(root: Path) -> list[InputProblem]:
    with pytest.raises(InvalidInput) as caught:
        load_catalog(root)
    return caught.value.problems


def line_of(text: str, start: str, after: int = 0) -> int:
    """The 1-based number of the first line after line `after` that starts (stripped) with start."""
    for number, line in enumerate(text.splitlines(), 1):
        if number > after and line.strip().startswith(start):
            return number
    raise AssertionError(f"no line starts with {start!r}")


# --- every check of the entry as a whole points at its field's own line --------------------------------

# fields, the field reported, its message, and the line it is on: (starts with, which occurrence from 0).
WHOLE_ENTRY_CHECKS: dict[str, tuple[dict[str, Any], str, str, tuple[str, int]]] = {
    "a tool declared twice": (
        {"tools": [{"name": "search"}, {"name": "fetch"}, {"name": "search"}]},
        "tools[2].name",
        "tool search declared twice (also tools[0])",
        ("- name: search", 1),
    ),
    "two secrets for one variable": (
        {"secrets": [{"key": "a/one", "env": "TOKEN"}, {"key": "a/two", "env": "TOKEN"}]},
        "secrets[1].env",
        "secrets[0] already feeds the environment variable TOKEN",
        ("env: TOKEN", 1),
    ),
    "a secret also a plain setting": (
        {"secrets": [{"key": "a/one", "env": "TOKEN"}], "env": {"TOKEN": "plain"}},
        "env.TOKEN",
        "TOKEN set both as a secret and as a plain setting",
        ("TOKEN: plain", 0),
    ),
    "args for a stdio server": (
        {"transport": {"type": "stdio", "command": ["server"]}, "args": ["--verbose"]},
        "args",
        "stdio servers take `transport.command`, not `args`",
        ("args:", 0),
    ),
    "decommissioned yet enabled": (
        {
            "environments": {"dev": {}},
            "decommissioned": {"environments": ["dev"], "reason": "replaced", "date": "2026-11-01"},
        },
        "environments.dev",
        "decommissioned from dev but still enabled there",
        ("dev: {}", 0),
    ),
    "a digest without its source": (
        {"image": {"repository": "ghcr.io/example/alpha", "digest": "sha256:" + "a" * 64}},
        "image.digest",
        "a pinned digest needs `digestSource`",
        ("digest:", 0),
    ),
    "requests above limits": (
        {"resources": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
        "resources.requests.cpu",
        "requests.cpu is above limits.cpu",
        ("cpu: '2'", 0),
    ),
}


@pytest.mark.parametrize("case", WHOLE_ENTRY_CHECKS)
def test_whole_entry_checks_point_at_the_field_not_the_schema_line(
    catalog_dir: Callable[..., Path], case: str
) -> None:
    fields, field, message, (starts, occurrence) = WHOLE_ENTRY_CHECKS[case]
    text = entry_text(entry(**fields))
    [problem] = problems_of(catalog_dir(alpha=text))
    assert (problem.field, message in problem.message) == (field, True), problem
    expected = line_of(text, starts)
    for _ in range(occurrence):
        expected = line_of(text, starts, after=expected)
    assert problem.line == expected != 2, (problem, text)


def test_a_missing_top_level_field_names_no_line(catalog_dir: Callable[..., Path]) -> None:
    # The entry has no line for a field it lacks; its first line (`$schema:`) is not it either.
    entry = minimal_server("alpha")
    del entry["image"]
    [problem] = problems_of(catalog_dir(alpha=entry_text(entry)))
    assert (problem.line, problem.field, problem.message) == (None, "image", "required field is missing")
    assert str(problem).endswith("alpha.yaml: image: required field is missing")


def test_a_missing_nested_field_points_at_its_parent(catalog_dir: Callable[..., Path]) -> None:
    entry = minimal_server("alpha", owner={"team": "platform"})
    text = entry_text(entry)
    [problem] = problems_of(catalog_dir(alpha=text))
    assert (problem.field, problem.line) == ("owner.contact", line_of(text, "owner:"))


# --- a field at the wrong indentation -----------------------------------------------------------------


def test_a_port_at_the_top_level_belongs_under_transport(catalog_dir: Callable[..., Path]) -> None:
    text = entry_text(minimal_server("alpha")) + "port: 9000\n"
    [problem] = problems_of(catalog_dir(alpha=text))
    assert (problem.field, problem.line) == ("port", line_of(text, "port: 9000"))
    assert problem.message == "unknown field here: `port` belongs under `transport`; check its indentation"
    assert "spelling" not in problem.message


def test_fields_dedented_out_of_their_mapping(catalog_dir: Callable[..., Path]) -> None:
    entry = minimal_server("alpha")
    del entry["transport"]
    text = entry_text(entry) + "transport:\ntype: streamable-http\nport: 8080\n"
    problems = {problem.field: problem for problem in problems_of(catalog_dir(alpha=text))}
    assert set(problems) == {"transport", "type", "port"}
    assert problems["transport"].message == (
        "must be a mapping of fields (`key: value` lines indented under it), found nothing (an empty value)"
    )
    assert "`type` belongs under `transport`" in problems["type"].message
    assert "`port` belongs under `transport`" in problems["port"].message


@pytest.mark.parametrize(
    ("fields", "field", "belongs"),
    [
        # One level too shallow, inside a mapping.
        (
            {"resources": {"cpu": "1", "limits": {"cpu": "1", "memory": "1Gi"}}},
            "resources.cpu",
            "`cpu` belongs under `resources.requests`, `resources.limits` or"
            " `environments.<name>.resources.requests` (among others)",
        ),
        # Under the wrong parent.
        (
            {"owner": {"team": "platform", "contact": "p@example.com", "url": "https://example.com"}},
            "owner.url",
            "`url` belongs under `repository`",
        ),
        # A list item's field at the top level.
        ({"ports": [443]}, "ports", "`ports` belongs under `egress[]`"),
        # A top-level field indented into another.
        (
            {"transport": {"type": "streamable-http", "tools": []}},
            "transport.tools",
            "`tools` belongs at the top level",
        ),
    ],
)
def test_misplaced_fields_say_where_they_belong(
    catalog_dir: Callable[..., Path], fields: dict[str, Any], field: str, belongs: str
) -> None:
    [problem] = problems_of(catalog_dir(alpha=entry_text(entry(**fields))))
    assert problem.field == field
    assert belongs in problem.message and "check its indentation" in problem.message, problem.message


# --- typos --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "suggestion"),
    [
        ({"descripton": "x"}, "descripton", "did you mean `description`?"),
        ({"transport": {"type": "sse", "prot": 8080}}, "transport.prot", "did you mean `port`?"),
        ({"run-as-user": 1000}, "run-as-user", "did you mean `runAsUser`? (fields are written in camelCase)"),
        ({"Stateless": True}, "Stateless", "did you mean `stateless`?"),
        # Misspelt and misplaced: the nearest name anywhere, with where it goes.
        (
            {"digestSorce": "https://example.com"},
            "digestSorce",
            "did you mean `digestSource`, under `image`?",
        ),
    ],
)
def test_typos_get_the_nearest_known_field(
    catalog_dir: Callable[..., Path], fields: dict[str, Any], field: str, suggestion: str
) -> None:
    [problem] = problems_of(catalog_dir(alpha=entry_text(entry(**fields))))
    assert problem.field == field
    assert problem.message.startswith("unknown field") and suggestion in problem.message, problem.message


def test_an_unknown_field_with_no_near_name_lists_the_fields_there(catalog_dir: Callable[..., Path]) -> None:
    owner = {"team": "platform", "contact": "p@example.com", "zzz": 1}
    [problem] = problems_of(catalog_dir(alpha=entry_text(minimal_server("alpha", owner=owner))))
    assert problem.message == "unknown field: the fields here are contact, team"


def test_a_value_typo_gets_the_nearest_choice(catalog_dir: Callable[..., Path]) -> None:
    fields = {"transport": {"type": "stdoi", "command": ["x"]}}
    [problem] = problems_of(catalog_dir(alpha=entry_text(entry(**fields))))
    assert problem.message == "must be one of: streamable-http, sse, stdio (did you mean stdio?)"


# --- plain words for every kind of pydantic error the inputs produce -----------------------------------

# Broken entries, each producing at least one kind of pydantic error; the test below checks that the
# kinds seen are the ones we translate, and that none of pydantic's wording reaches a message.
BROKEN: dict[str, dict[str, Any]] = {
    "text expected": {"title": 5},
    "text, given nothing": {"description": None},
    "whole number expected": {"runAsUser": "1000"},
    "whole number, given a fraction": {"runAsUser": 1.5},
    "true or false expected": {"stateless": "yes"},
    "list expected": {"args": "--verbose"},
    "mapping expected": {"owner": "platform"},
    "mapping of settings expected": {"env": ["LEVEL=debug"]},
    "model expected in a list": {"tools": ["search"]},
    "one of some values": {"transport": {"type": "websocket"}},
    "an unknown environment (a key)": {"environments": {"qa": {}}},
    "a pattern": {"name": "Alpha"},
    "a pattern in a key": {"env": {"lower_case": "x"}},
    "a pattern in a list": {"access": [{"roles": ["Admin"], "tools": ["*"]}]},
    "empty text": {"title": ""},
    "text too long": {"title": "x" * 101},
    "an empty list": {"egress": [{"host": "api.example.com", "ports": []}]},
    "too small": {"runAsUser": 0},
    "too large": {"transport": {"type": "sse", "port": 70000}},
    "a date": {"decommissioned": {"environments": ["prod"], "reason": "r", "date": "yesterday"}},
    "a date as a number": {"decommissioned": {"environments": ["prod"], "reason": "r", "date": 2026}},
    "a date as a list": {"decommissioned": {"environments": ["prod"], "reason": "r", "date": ["2026"]}},
    "a missing field": {"owner": {"team": "platform"}},
    "an unknown field": {"colour": "blue"},
    "a check of the model": {"egress": [{"ports": [443]}]},
    "a memory quantity": {"resources": {"limits": {"cpu": "1", "memory": "lots"}}},
    "a digest": {"image": {"repository": "ghcr.io/example/alpha", "tag": "1", "digest": "md5:00"}},
}
# What pydantic calls the kinds of error above; a new kind fails the test until it has plain words.
EXPECTED_KINDS = {
    "string_type",
    "int_type",
    "bool_type",
    "list_type",
    "dict_type",
    "model_type",
    "literal_error",
    "string_pattern_mismatch",
    "string_too_short",
    "string_too_long",
    "too_short",
    "greater_than_equal",
    "less_than_equal",
    "date_from_datetime_parsing",
    "date_from_datetime_inexact",
    "date_type",
    "missing",
    "extra_forbidden",
    "value_error",
}


def kinds_of(model: type[BaseModel], data: dict[str, Any]) -> set[str]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return {error["type"] for error in exc.errors()}
    return set()


def test_the_broken_entries_produce_the_kinds_of_error_we_translate() -> None:
    seen = set().union(*(kinds_of(Server, entry(**fields)) for fields in BROKEN.values()))
    assert seen == EXPECTED_KINDS


@pytest.mark.parametrize("case", BROKEN)
def test_no_pydantic_wording_reaches_a_message(catalog_dir: Callable[..., Path], case: str) -> None:
    problems = problems_of(catalog_dir(alpha=entry_text(entry(**BROKEN[case]))))
    assert problems
    for problem in problems:
        for phrase in PYDANTIC_PHRASES:
            assert phrase.lower() not in problem.message.lower(), problem
        # No regex either: patterns are said in words.
        assert not re.search(r"\^|\$'|\[a-z|\\[sd]|\{\d", problem.message), problem
        assert problem.line != 2, problem


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"title": 5}, "title", "must be text, found a number (put it in quotes)"),
        ({"runAsUser": "1000"}, "runAsUser", "must be a whole number, found text (write it without quotes)"),
        (
            {"args": "--verbose"},
            "args",
            "must be a list (one `- item` line each, indented under it), found text",
        ),
        (
            {"environments": {"qa": {}}},
            "environments.qa",
            "the name must be one of: local, dev, staging, prod",
        ),
        (
            {"name": "Alpha"},
            "name",
            "must be a DNS label: lowercase letters, digits and '-', starting with a letter,"
            " not ending with '-'",
        ),
        (
            {"egress": [{"host": "api.example.com", "ports": []}]},
            "egress[0].ports",
            "needs at least 1 item, found 0",
        ),
        ({"transport": {"type": "sse", "port": 70000}}, "transport.port", "must be 65535 or less"),
        ({"title": ""}, "title", "must not be empty"),
    ],
)
def test_plain_words(
    catalog_dir: Callable[..., Path], fields: dict[str, Any], field: str, message: str
) -> None:
    [problem] = problems_of(catalog_dir(alpha=entry_text(entry(**fields))))
    assert (problem.field, problem.message) == (field, message)


def patterns(model: type[BaseModel]) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(model.model_json_schema(by_alias=True))
    return found


@pytest.mark.parametrize("model", [Server, Environment])
def test_every_pattern_of_the_inputs_has_words(model: type[BaseModel]) -> None:
    missing = patterns(model) - set(PATTERN_WORDS)
    assert not missing, f"say in PATTERN_WORDS (mcpfleet/messages.py) what these mean: {sorted(missing)}"


@pytest.mark.parametrize(
    "fields",
    [
        {"name": TOKEN},
        {"version": f"1.0 {TOKEN}"},
        {"transport": {"type": TOKEN}},
        {"runAsUser": TOKEN},
        {"image": {"repository": "ghcr.io/example/alpha", "tag": "1", "digest": TOKEN}},
    ],
)
def test_messages_never_show_the_value_given(
    catalog_dir: Callable[..., Path], fields: dict[str, Any]
) -> None:
    # A pasted token is refused as a secret; the field's own error, if any, does not quote it either.
    problems = problems_of(catalog_dir(alpha=entry_text(entry(**fields))))
    assert problems
    for problem in problems:
        assert TOKEN not in str(problem) and TOKEN[4:20] not in str(problem)
