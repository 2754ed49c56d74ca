"""What a secret looks like when someone pasted one where it does not belong."""

from __future__ import annotations

import re

SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE)
# Known formats (prefixes documented by each issuer); a match anywhere in the value counts.
TOKEN_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("GitHub token", re.compile(r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}")),
    ("GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}")),
    ("OpenAI-style API key", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}")),
    ("Slack token", re.compile(r"\bxox[bpoas]-[A-Za-z0-9-]{10,}")),
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)
# What the offline plan shows for a Pulumi secret, and for a value known only after apply.
MASKED = ("[secret]", "(known after apply)")


def secret_problem(name: str, value: object) -> str | None:
    """Why name=value looks like a plaintext secret, or None."""
    if not isinstance(value, str) or value in MASKED or not value.strip():
        return None
    for label, pattern in TOKEN_FORMATS:
        if pattern.search(value):
            return f"{name} holds what looks like a {label}"
    if SECRET_NAME.search(name):
        return f"{name} is named like a secret and holds a literal value"
    return None
