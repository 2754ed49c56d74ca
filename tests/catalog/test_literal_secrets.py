"""A literal secret anywhere in an entry is refused with its file, line and field, and never shown; a
secret store key belongs to one reference of one server.

Fixture catalogs only (written per test); the tokens come from test_secretscan, built from documented
formats.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.errors import InputProblem, InvalidInput
from tests.catalog.test_secretscan import TOKENS
from tests.conftest import minimal_server

GITHUB_PAT = TOKENS["github classic PAT"][0]
PRIVATE_KEY = TOKENS["RSA private key (PKCS#1 PEM)"][0]


def dump(entry: dict[str, Any]) -> str:
    # Wide lines: a token stays on the line of its field.
    return yaml.safe_dump(entry, sort_keys=False, width=10_000)


def refused(root: Path) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        load_catalog(root)
    return caught.value


def assert_never_shown(error: InvalidInput, *literals: str) -> None:
    shown = str(error) + "".join(f"{p.field}{p.message}" for p in error.problems)
    for literal in literals:
        assert literal not in shown


def secret_problems(error: InvalidInput) -> list[InputProblem]:
    return [p for p in error.problems if "literal secret" in p.message]


def test_the_fixture_entry_is_valid_without_a_secret(catalog_dir: Callable[..., Path]) -> None:
    # So every refusal below is the secret's doing.
    assert load_catalog(catalog_dir(alpha=dump(minimal_server("alpha", env={"UPSTREAM_TOKEN": "x"}))))


@pytest.mark.parametrize("name", TOKENS)
def test_every_token_format_pasted_as_a_setting_is_refused(
    catalog_dir: Callable[..., Path], name: str
) -> None:
    token = TOKENS[name][0]
    text = dump(minimal_server("alpha", env={"UPSTREAM_TOKEN": token}))
    error = refused(catalog_dir(alpha=text))
    [problem] = secret_problems(error)
    assert problem.file.endswith("servers/alpha.yaml")
    assert problem.field == "env.UPSTREAM_TOKEN"
    assert problem.line is not None and "UPSTREAM_TOKEN:" in text.splitlines()[problem.line - 1]
    assert "secret values never go in the catalog" in problem.message and "`secrets`" in problem.message
    assert_never_shown(error, token, *token.splitlines())


# Every place a string goes in an entry, with the field the refusal must name and a word on its line.
PLACES: dict[str, tuple[Callable[[str], dict[str, Any]], str, str]] = {
    "setting": (lambda t: {"env": {"API_TOKEN": t}}, "env.API_TOKEN", "API_TOKEN:"),
    "setting of one environment": (
        lambda t: {"environments": {"local": {}, "dev": {"env": {"API_TOKEN": t}}}},
        "environments.dev.env.API_TOKEN",
        "API_TOKEN:",
    ),
    "container argument": (lambda t: {"args": ["--verbose", f"--token={t}"]}, "args[1]", "--token="),
    "stdio command": (
        lambda t: {"transport": {"type": "stdio", "command": ["npx", "-y", "pkg@1.0.0", "--api-key", t]}},
        "transport.command[4]",
        "- ",
    ),
    "secret reference key": (
        lambda t: {"secrets": [{"key": t, "env": "API_TOKEN"}]},
        "secrets[0].key",
        "key:",
    ),
    "description": (
        lambda t: {"description": f"Calls the API with {t} for now."},
        "description",
        "description:",
    ),
    "tool description": (
        lambda t: {"tools": [{"name": "search", "description": f"Search (key {t})"}]},
        "tools[0].description",
        "description:",
    ),
    "health check path": (
        lambda t: {"health": {"liveness": {"httpPath": f"/healthz/{t}"}}},
        "health.liveness.httpPath",
        "httpPath:",
    ),
    "repository URL": (
        lambda t: {
            "repository": {"url": f"https://github.com/example/alpha?access_token={t}", "source": "github"}
        },
        "repository.url",
        "url:",
    ),
    "package arguments": (
        lambda t: {
            "packages": [
                {"registryType": "npm", "identifier": "pkg", "version": "1.0.0", "packageArguments": [t]}
            ]
        },
        "packages[0].packageArguments[0]",
        "- ",
    ),
    "owner contact": (
        lambda t: {"owner": {"team": "platform", "contact": f"https://hooks.example.com/{t}"}},
        "owner.contact",
        "contact:",
    ),
    "unknown field": (lambda t: {"apiToken": t}, "apiToken", "apiToken:"),
}


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("token_name", ["github classic PAT", "Stripe live key", "random base62 password"])
def test_a_secret_in_any_field_is_refused_there(
    catalog_dir: Callable[..., Path], place: str, token_name: str
) -> None:
    build, field, marker = PLACES[place]
    token = TOKENS[token_name][0]
    text = dump(minimal_server("alpha", **build(token)))
    error = refused(catalog_dir(alpha=text))
    [problem] = secret_problems(error)
    assert problem.field == field
    assert problem.line is not None and marker in text.splitlines()[problem.line - 1]
    assert_never_shown(error, token)
    # One problem per field: the model's own complaint about the field (a pattern, an unknown name)
    # would only repeat it, and could show the value.
    assert [p for p in error.problems if p.field == field] == [problem]


def test_a_private_key_block_is_refused_at_its_field(catalog_dir: Callable[..., Path]) -> None:
    text = (
        dump(minimal_server("alpha"))
        + "env:\n  TLS_KEY: |\n"
        + "".join(f"    {line}\n" for line in PRIVATE_KEY.splitlines())
    )
    error = refused(catalog_dir(alpha=text))
    [problem] = secret_problems(error)
    assert problem.field == "env.TLS_KEY"
    assert text.splitlines()[problem.line - 1].startswith("  TLS_KEY:")  # type: ignore[operator]
    assert "private-key" in problem.message
    assert_never_shown(error, *PRIVATE_KEY.splitlines()[1:-1])


def test_a_secret_as_a_mapping_key_is_refused_without_naming_the_key(
    catalog_dir: Callable[..., Path],
) -> None:
    text = dump(minimal_server("alpha", env={GITHUB_PAT: "1"}))
    error = refused(catalog_dir(alpha=text))
    [problem] = secret_problems(error)
    assert problem.field == "env.[redacted]"
    assert_never_shown(error, GITHUB_PAT)


def test_a_secret_in_a_comment_is_refused_at_its_line(catalog_dir: Callable[..., Path]) -> None:
    text = dump(minimal_server("alpha")) + f"# the token for now: {GITHUB_PAT}\n"
    error = refused(catalog_dir(alpha=text))
    [problem] = secret_problems(error)
    assert problem.field is None and problem.line == len(text.splitlines())
    assert_never_shown(error, GITHUB_PAT)


def test_a_secret_written_with_yaml_escapes_is_refused(catalog_dir: Callable[..., Path]) -> None:
    # The file never shows the token as such; the value YAML reads (and would render) is the token.
    escaped = "".join(f"\\x{ord(c):02x}" for c in GITHUB_PAT)
    text = dump(minimal_server("alpha")) + f'env:\n  UPSTREAM: "{escaped}"\n'
    error = refused(catalog_dir(alpha=text))
    [problem] = secret_problems(error)
    assert problem.field == "env.UPSTREAM"
    assert_never_shown(error, GITHUB_PAT)


def test_a_secret_in_a_file_that_is_not_yaml_is_refused_and_kept_out_of_the_parse_error(
    catalog_dir: Callable[..., Path],
) -> None:
    # A duplicate key is a YAML error whose message names the key: here the key is the token.
    text = dump(minimal_server("alpha")) + f"{GITHUB_PAT}: 1\n{GITHUB_PAT}: 2\n"
    error = refused(catalog_dir(alpha=text))
    assert any("duplicate key" in p.message for p in error.problems)
    assert secret_problems(error)
    assert_never_shown(error, GITHUB_PAT)
    random_key = TOKENS["random base62 password"][0]
    error = refused(catalog_dir(alpha=dump(minimal_server("alpha")) + f"{random_key}: 1\n{random_key}: 2\n"))
    assert any("duplicate key" in p.message for p in error.problems)
    assert_never_shown(error, random_key)


@pytest.mark.parametrize("value", ["hunter2", GITHUB_PAT, PRIVATE_KEY])
def test_a_secret_value_field_says_values_never_go_in_the_catalog_and_how_to_store_one(
    catalog_dir: Callable[..., Path], value: str
) -> None:
    text = dump(
        minimal_server("alpha", secrets=[{"key": "github/pat", "env": "GITHUB_TOKEN", "value": value}])
    )
    error = refused(catalog_dir(alpha=text))
    [problem] = [p for p in error.problems if p.field == "secrets[0].value"]
    assert "value:" in text.splitlines()[problem.line - 1]  # type: ignore[operator]
    assert problem.message.startswith("secret values never go in the catalog")
    assert "aws secretsmanager put-secret-value --secret-id mcpfleet/<env>/github/pat" in problem.message
    assert (
        "pulumi config set --secret --type string --path 'mcpfleet:secrets.github/pat' -s local"
        in problem.message
    )
    # Not "unknown field", and nothing else about it.
    assert len(error.problems) == 1
    assert_never_shown(error, value, *value.splitlines())


def test_the_store_command_quotes_a_key_with_a_dot(catalog_dir: Callable[..., Path]) -> None:
    text = dump(minimal_server("alpha", secrets=[{"key": "api.key", "env": "API_KEY", "value": "x"}]))
    [problem] = refused(catalog_dir(alpha=text)).problems
    assert "--path 'mcpfleet:secrets[\"api.key\"]' -s local" in problem.message


def test_a_secret_value_without_a_usable_key_names_a_placeholder(catalog_dir: Callable[..., Path]) -> None:
    text = dump(minimal_server("alpha", secrets=[{"key": GITHUB_PAT, "env": "API_KEY", "value": GITHUB_PAT}]))
    error = refused(catalog_dir(alpha=text))
    value = next(p for p in error.problems if p.field == "secrets[0].value")
    assert "mcpfleet/<env>/<key>" in value.message
    assert any(p.field == "secrets[0].key" for p in secret_problems(error))
    assert_never_shown(error, GITHUB_PAT)


def test_a_secret_in_one_file_stays_out_of_every_other_message(catalog_dir: Callable[..., Path]) -> None:
    # The secret is also a (wrong) store key shared with another entry: that message must not show it.
    entry = minimal_server("alpha", secrets=[{"key": GITHUB_PAT, "env": "API_KEY"}])
    other = minimal_server("beta", secrets=[{"key": GITHUB_PAT, "env": "API_KEY"}])
    error = refused(catalog_dir(alpha=dump(entry), beta=dump(other)))
    assert {p.field for p in secret_problems(error)} == {"secrets[0].key"}
    assert_never_shown(error, GITHUB_PAT)


# Store keys


def with_key(name: str, *keys: str) -> str:
    refs = [{"key": key, "env": f"SECRET_{index}"} for index, key in enumerate(keys)]
    return dump(minimal_server(name, secrets=refs))


def test_two_servers_may_not_share_a_store_key(catalog_dir: Callable[..., Path]) -> None:
    text = with_key("alpha", "shared/api-key")
    error = refused(catalog_dir(alpha=text, beta=with_key("beta", "shared/api-key")))
    problems = {Path(p.file).name: p for p in error.problems}
    assert sorted(problems) == ["alpha.yaml", "beta.yaml"]
    for name, other in (("alpha.yaml", "beta"), ("beta.yaml", "alpha")):
        problem = problems[name]
        assert problem.field == "secrets[0].key"
        assert "key:" in text.splitlines()[problem.line - 1]  # type: ignore[operator]
        assert f"also referenced by {other} (" in problem.message and "one server only" in problem.message
    assert load_catalog(catalog_dir(beta=with_key("beta", "beta/api-key")))


def test_one_server_may_not_reference_a_key_twice(catalog_dir: Callable[..., Path]) -> None:
    error = refused(catalog_dir(alpha=with_key("alpha", "alpha/key", "alpha/key")))
    [problem] = error.problems
    assert problem.field == "secrets[1].key"
    assert "already referenced by secrets[0].key" in problem.message


def test_distinct_keys_whose_cloud_resources_would_share_a_name_are_refused(
    catalog_dir: Callable[..., Path],
) -> None:
    # components/secrets.py names each reference's Secrets Manager resource `<server>-secret-<key>`.
    error = refused(catalog_dir(a=with_key("a", "b-secret-k"), **{"a-secret-b": with_key("a-secret-b", "k")}))
    assert {(Path(p.file).name, p.field) for p in error.problems} == {
        ("a.yaml", "secrets[0].key"),
        ("a-secret-b.yaml", "secrets[0].key"),
    }
    assert all("'a-secret-b-secret-k'" in p.message for p in error.problems)
