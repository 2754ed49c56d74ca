"""Every kind of broken catalog is refused with the file, the line or field, and a readable reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.errors import InputProblem, InvalidInput
from tests.conftest import minimal_server


def problems_of(root: Path) -> list[InputProblem]:
    with pytest.raises(InvalidInput) as caught:
        load_catalog(root)
    return caught.value.problems


def only_problem(root: Path) -> InputProblem:
    problems = problems_of(root)
    assert len(problems) == 1, problems
    return problems[0]


def text_of(entry: dict[str, object]) -> str:
    return yaml.safe_dump(entry, sort_keys=False)


def test_valid_entry_loads(catalog_dir: Callable[..., Path]) -> None:
    catalog = load_catalog(catalog_dir(alpha=minimal_server("alpha")))
    assert [s.name for s in catalog.servers] == ["alpha"]
    server = catalog.servers[0]
    # Safe defaults: runs in local and dev only, non-root, resources bounded.
    assert sorted(server.environments) == ["dev", "local"]
    assert server.run_as_user == 65532
    assert server.resources.limits.memory == "256Mi"
    assert server.stateless is False


def test_yaml_syntax_error_names_file_and_line(catalog_dir: Callable[..., Path]) -> None:
    text = text_of(minimal_server("alpha")) + "owner: [unclosed\n"
    problem = only_problem(catalog_dir(alpha=text))
    assert problem.file.endswith("servers/alpha.yaml")
    assert problem.line is not None and problem.line >= 10
    assert "invalid YAML" in problem.message


def test_empty_file(catalog_dir: Callable[..., Path]) -> None:
    problem = only_problem(catalog_dir(alpha=""))
    assert problem.file.endswith("alpha.yaml")
    assert "empty" in problem.message


def test_list_instead_of_mapping(catalog_dir: Callable[..., Path]) -> None:
    problem = only_problem(catalog_dir(alpha="- name: alpha\n- name: beta\n"))
    assert problem.line == 1
    assert "expected a mapping" in problem.message and "list" in problem.message


def test_unknown_field_names_its_line(catalog_dir: Callable[..., Path]) -> None:
    entry = minimal_server("alpha")
    entry["transport"] = {"type": "streamable-http", "prot": 8080}
    problem = only_problem(catalog_dir(alpha=text_of(entry)))
    assert problem.field == "transport.prot"
    assert "unknown field" in problem.message
    lines = text_of(entry).splitlines()
    assert lines[problem.line - 1].strip().startswith("prot:")  # type: ignore[operator]


def test_missing_required_field(catalog_dir: Callable[..., Path]) -> None:
    entry = minimal_server("alpha")
    del entry["image"]
    problem = only_problem(catalog_dir(alpha=entry))
    assert (problem.field, problem.message) == ("image", "required field is missing")


def test_two_servers_with_one_name(catalog_dir: Callable[..., Path]) -> None:
    root = catalog_dir(alpha=minimal_server("alpha"), alpha2=minimal_server("alpha"))
    problems = problems_of(root)
    duplicate = [p for p in problems if "already used by" in p.message]
    assert len(duplicate) == 1
    assert duplicate[0].file.endswith("alpha2.yaml") and duplicate[0].message.endswith("servers/alpha.yaml")


@pytest.mark.parametrize("bad_name", ["Alpha", "1alpha", "alpha_beta", "alpha-", "a" * 41, ""])
def test_invalid_names(catalog_dir: Callable[..., Path], bad_name: str) -> None:
    problems = problems_of(catalog_dir(alpha=minimal_server(bad_name)))
    assert any(p.field == "name" for p in problems), problems


def test_file_name_must_match(catalog_dir: Callable[..., Path]) -> None:
    problem = only_problem(catalog_dir(beta=minimal_server("alpha")))
    assert problem.field == "name" and "must match the file name" in problem.message


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("transport", {"type": "streamable-http", "port": "8080"}, "transport.port"),
        ("stateless", "yes", "stateless"),
        ("env", {"LOG_LEVEL": 3}, "env.LOG_LEVEL"),
        ("tools", {"name": "search"}, "tools"),
    ],
)
def test_wrong_types(catalog_dir: Callable[..., Path], field: str, value: object, path: str) -> None:
    problem = only_problem(catalog_dir(alpha=minimal_server("alpha", **{field: value})))
    assert problem.field == path


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("scaling", {"replicas": -1}, "scaling.replicas"),
        ("scaling", {"maxReplicas": 0}, "scaling.maxReplicas"),
        ("transport", {"type": "sse", "port": -8080}, "transport.port"),
        ("runAsUser", 0, "runAsUser"),
    ],
)
def test_negative_or_zero_numbers(
    catalog_dir: Callable[..., Path], field: str, value: object, path: str
) -> None:
    problem = only_problem(catalog_dir(alpha=minimal_server("alpha", **{field: value})))
    assert problem.field == path
    assert "1 or more" in problem.message


def test_duplicate_keys(catalog_dir: Callable[..., Path]) -> None:
    text = text_of(minimal_server("alpha")) + "title: Second title\n"
    problem = only_problem(catalog_dir(alpha=text))
    assert "duplicate key 'title'" in problem.message
    assert problem.line == len(text.splitlines())


def test_python_object_tags(catalog_dir: Callable[..., Path]) -> None:
    text = text_of(minimal_server("alpha")) + "extra: !!python/object/apply:os.system ['echo pwned']\n"
    problem = only_problem(catalog_dir(alpha=text))
    assert "python/object" in problem.message
    assert problem.line == len(text.splitlines())


def test_alias_bomb_is_refused_before_expansion(catalog_dir: Callable[..., Path]) -> None:
    bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb.append(f"{level}: &{level} [{', '.join(['*' + previous] * 9)}]")
    problem = only_problem(catalog_dir(alpha="\n".join(bomb) + "\n"))
    assert "aliases are not allowed" in problem.message
    assert problem.line == 2


def test_bytes_that_are_not_utf8(catalog_dir: Callable[..., Path]) -> None:
    raw = text_of(minimal_server("alpha")).encode() + b"description: caf\xe9\n"
    problem = only_problem(catalog_dir(alpha=raw))
    assert "not valid UTF-8" in problem.message
    assert problem.line == raw.count(b"\n")


def test_every_problem_is_reported_at_once(catalog_dir: Callable[..., Path]) -> None:
    bad_scaling = minimal_server("beta", scaling={"replicas": 0})
    root = catalog_dir(alpha="", beta=bad_scaling, gamma=minimal_server("gamma", colour="blue"))
    files = sorted({Path(p.file).name for p in problems_of(root)})
    assert files == ["alpha.yaml", "beta.yaml", "gamma.yaml"]


def test_missing_catalog_folder(tmp_path: Path) -> None:
    problem = only_problem(tmp_path / "nowhere")
    assert "catalog folder not found" in problem.message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image": {"repository": "ghcr.io/example/alpha"}}, "give a tag, a digest, or both"),
        (
            {"image": {"repository": "ghcr.io/example/alpha", "digest": "sha256:" + "a" * 64}},
            "needs `digestSource`",
        ),
        ({"transport": {"type": "stdio"}}, "`command` is required"),
        ({"egress": [{"ports": [443]}]}, "exactly one of `host` or `cidr`"),
        (
            {
                "resources": {
                    "requests": {"cpu": "2", "memory": "1Gi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                }
            },
            "requests.cpu is above limits.cpu",
        ),
        ({"tools": [{"name": "search"}, {"name": "search"}]}, "tool search declared twice"),
        (
            {"secrets": [{"key": "a/b", "env": "TOKEN"}], "env": {"TOKEN": "x"}},
            "TOKEN set both as a secret and as a plain setting",
        ),
        (
            {"decommissioned": {"environments": ["dev"], "reason": "replaced", "date": "2026-11-01"}},
            "decommissioned from dev but still enabled there",
        ),
    ],
)
def test_rules_across_fields(
    catalog_dir: Callable[..., Path], fields: dict[str, object], message: str
) -> None:
    problem = only_problem(catalog_dir(alpha=minimal_server("alpha", **fields)))
    assert message in problem.message
