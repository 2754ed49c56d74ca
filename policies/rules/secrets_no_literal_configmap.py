"""Secrets: ConfigMaps are not secret (anyone who may read the namespace reads them): no secret values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import CONFIG_MAP, k8s
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import as_map, kind_of, where
from policies.rules._secrets import secret_problem


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if kind_of(resource_type) != "ConfigMap":
        return []
    messages = []
    for key, value in as_map(inputs.get("data")).items():
        problem = secret_problem(str(key), value)
        if problem:
            messages.append(f"{where(resource_type, inputs)}: {problem}")
    return messages


_PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----\n"

RULE = Rule(
    id="secrets-no-literal-configmap",
    description="ConfigMap data holds no secret-looking value.",
    severity="critical",
    remediation="Move the value out of `env` in the catalog entry into the secret store and list it under "
    "`secrets`; rotate the exposed value.",
    catalog_fix="remove the value from `env` (or `environments.{env}.env`), store it in the secret store "
    "and reference it under `secrets` (`secrets[].key` and `secrets[].env`); rotate the exposed value",
    validate_resource=validate,
    tags=("secrets",),
    cases=(
        Case(
            "plain settings",
            "pass",
            (k8s(CONFIG_MAP, "alpha", {"data": {"LOG_LEVEL": "info", "TOKEN_TTL": ""}}),),
        ),
        Case(
            "password by name", "violate", (k8s(CONFIG_MAP, "alpha", {"data": {"DB_PASSWORD": "s3cret!"}}),)
        ),
        Case(
            "private key in a file",
            "violate",
            (
                k8s(
                    CONFIG_MAP,
                    "alpha",
                    {"data": {"tls.pem": _PEM}},
                ),
            ),
        ),
        Case(
            "Slack token",
            "violate",
            (k8s(CONFIG_MAP, "alpha", {"data": {"HOOK": "xoxb-1234567890-abcdef"}}),),
        ),
    ),
)
