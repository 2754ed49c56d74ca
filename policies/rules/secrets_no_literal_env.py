"""Secrets: container env never carries a secret literally; it references a Secret (secretKeyRef)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import as_list, containers, dig, pod_spec, where
from policies.rules._secrets import secret_problem


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    if spec is None:
        return []
    messages = []
    for c in containers(spec):
        for entry in as_list(c.get("env")):
            problem = secret_problem(str(dig(entry, "name") or "?"), dig(entry, "value"))
            if problem:
                messages.append(f"{where(resource_type, inputs, c)}: env {problem}")
    return messages


_ENV = f"{C0}.env"

RULE = Rule(
    id="secrets-no-literal-env",
    description="Container environment variables hold no secret literally.",
    severity="critical",
    remediation="Move the value to the secret store and list it under `secrets` in the catalog entry "
    "(key and env var); the server then reads it from a Secret via secretKeyRef. Rotate the exposed value.",
    catalog_fix="remove the value from `env` (or `environments.{env}.env`), store it in the secret store "
    "and reference it under `secrets` (`secrets[].key` and `secrets[].env`); rotate the exposed value",
    validate_resource=validate,
    tags=("secrets",),
    cases=(
        Case("secret by reference", "pass", (deployment(),)),
        Case(
            "masked Pulumi secret",
            "pass",
            (deployment({_ENV: [{"name": "API_TOKEN", "value": "[secret]"}]}),),
        ),
        Case(
            "literal token by name",
            "violate",
            (deployment({_ENV: [{"name": "API_TOKEN", "value": "hunter2hunter2"}]}),),
        ),
        Case(
            "GitHub token in an innocent name",
            "violate",
            (deployment({_ENV: [{"name": "CONFIG", "value": "ghp_" + "a1B2" * 9}]}),),
        ),
        Case(
            "AWS key id",
            "violate",
            (deployment({_ENV: [{"name": "AWS_ID", "value": "AKIA" + "ABCDEFGHIJ234567"}]}),),
        ),
    ),
)
