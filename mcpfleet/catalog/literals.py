"""Refuse literal secrets in catalog entries, saying where each is and what to do instead, never the value.

Every string of an entry is scanned (values and mapping keys, known fields or not) and so is the file's
text (comments): what is refused here never reaches a plan, a manifest, a report or a log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mcpfleet.catalog.secretscan import LocatedFinding, redact, scan_data, scan_text
from mcpfleet.errors import InputProblem
from mcpfleet.validation import dotted
from mcpfleet.yamlfile import Path_, YamlDocument

REDACTED = "[redacted]"
# Fields a pasted value would go in, beside a secret reference's `key` and `env`: `value` as asked, and
# the names AWS and Kubernetes give a secret's content.
VALUE_FIELDS = ("value", "secretString", "stringData")
LOCAL_SECRETS_CONFIG_KEY = "mcpfleet:secrets"


@dataclass
class SecretCheck:
    """What one file's check found: its problems, and every literal to keep out of any other message."""

    problems: list[InputProblem] = field(default_factory=list)
    literals: set[str] = field(default_factory=set)
    # Fields already reported here (pydantic's "unknown field" for them would only repeat it).
    reported: set[str] = field(default_factory=set)


def store_commands(key: str) -> str:
    """How a value gets into the store under key: Secrets Manager in the cloud, stack config on local.

    The same commands as the README and components/manifests/secrets.py (which this package may not
    import); neither puts the value on the command line.
    """
    path = (
        f"{LOCAL_SECRETS_CONFIG_KEY}[{json.dumps(key)}]"
        if "." in key
        else f"{LOCAL_SECRETS_CONFIG_KEY}.{key}"
    )
    return (
        f"in the cloud `aws secretsmanager put-secret-value --secret-id mcpfleet/<env>/{key}"
        " --secret-string file://<file holding the value>` (the stack's `secrets.namePrefix`, `mcpfleet/`"
        f" unless set); on local `pulumi config set --secret --type string --path '{path}' -s local`"
        " (pulumi prompts for the value)"
    )


def check_entry(document: YamlDocument, text: str, shown: str) -> SecretCheck:
    """Literal secrets in one parsed entry (document) whose file holds text."""
    check = SecretCheck()
    _value_fields(document, shown, check)
    located = [f for f in scan_data(document.data) if dotted(f.path) not in check.reported]
    check.literals.update(f.finding.secret for f in located)
    check.literals.update(str(f.path[-1]) for f in located if f.in_key)
    first: dict[Path_, LocatedFinding] = {}
    for hit in located:
        first.setdefault(hit.path, hit)
    for path, hit in first.items():
        name = _field_name(path, hit.in_key, check.literals)
        check.problems.append(
            InputProblem(shown, document.line_of(path), name, _message(path, hit.finding.kind))
        )
        check.reported.add(dotted(path))
    # What only the raw text holds: comments, or a value written with YAML escapes into a token.
    lines = {problem.line for problem in check.problems}
    for finding in scan_text(text):
        line = text.count("\n", 0, finding.start) + 1
        if line in lines or any(
            finding.secret in known or known in finding.secret for known in check.literals
        ):
            continue
        check.literals.add(finding.secret)
        check.problems.append(_line_problem(shown, line, finding.kind))
    return check


def check_text(text: str, shown: str) -> SecretCheck:
    """For a file that is not valid YAML: its text alone, so its secrets are refused and kept out of the
    YAML error's message too."""
    check = SecretCheck()
    for finding in scan_text(text):
        check.literals.add(finding.secret)
        check.problems.append(_line_problem(shown, text.count("\n", 0, finding.start) + 1, finding.kind))
    return check


def _line_problem(shown: str, line: int, kind: str) -> InputProblem:
    return InputProblem(
        shown,
        line,
        None,
        f"this line holds what looks like a literal secret ({kind}): remove it; secret values never go"
        " in the catalog, they live in the secret store, referenced under `secrets`",
    )


def _value_fields(document: YamlDocument, shown: str, check: SecretCheck) -> None:
    """`secrets[i].value` and its kin: refused whatever they hold, with the commands that store a value."""
    data = document.data
    refs = data.get("secrets") if isinstance(data, Mapping) else None
    if not isinstance(refs, list):
        return
    for index, ref in enumerate(refs):
        if not isinstance(ref, Mapping):
            continue
        for name in VALUE_FIELDS:
            if name not in ref:
                continue
            path: Path_ = ("secrets", index, name)
            check.literals.update(_strings(ref[name]))
            key = ref.get("key")
            shown_key = key if isinstance(key, str) and key and key not in check.literals else "<key>"
            check.problems.append(
                InputProblem(
                    shown,
                    document.line_of(path),
                    dotted(path),
                    "secret values never go in the catalog: remove this field and put the value in the"
                    f" secret store under the reference's `key`: {store_commands(shown_key)}",
                )
            )
            check.reported.add(dotted(path))


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def _field_name(path: Path_, in_key: bool, literals: set[str]) -> str:
    parts = [REDACTED if str(part) in literals else part for part in path]
    if in_key:
        parts[-1] = REDACTED
    return dotted(tuple(parts))


def _message(path: Path_, kind: str) -> str:
    if len(path) == 3 and path[0] == "secrets" and path[2] == "key":
        return (
            f"looks like a literal secret ({kind}): `key` is the secret's name in the store (e.g."
            " `github/pat`), and its value goes in the store, never in the catalog"
        )
    return (
        f"looks like a literal secret ({kind}); secret values never go in the catalog: declare it under"
        " `secrets` (`key`: its name in the secret store, `env`: the variable it fills) and put the value"
        " in the store"
    )


def redact_problems(problems: Iterable[InputProblem], literals: Iterable[str]) -> list[InputProblem]:
    """problems with every literal replaced, in fields and messages: the last guard before printing."""
    secrets = sorted(set(literals))
    if not secrets:
        return list(problems)
    return [
        InputProblem(
            problem.file,
            problem.line,
            None if problem.field is None else redact(problem.field, secrets),
            redact(problem.message, secrets),
        )
        for problem in problems
    ]
