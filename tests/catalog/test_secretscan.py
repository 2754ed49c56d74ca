"""The secret scan: real token formats are found by the rule that names them, random tokens by entropy,
and what catalog entries legitimately hold (URLs, hosts, paths, versions, images, digests) passes.

Every token is built here from its documented format, with random characters from a seeded generator:
none is a real credential.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from pathlib import Path

import pytest
import yaml

from mcpfleet.catalog import secretscan
from mcpfleet.catalog.secretscan import (
    RULES_FILE,
    gitleaks_rules,
    random_tokens,
    scan_data,
    scan_text,
    scan_value,
    shannon_entropy,
)
from tests.conftest import REPO
from tests.sample import sample_catalog, sample_entries

BASE62 = string.ascii_letters + string.digits
rng = random.Random(20261206)


def chars(count: int, alphabet: str = BASE62) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem(label: str) -> str:
    body = "\n".join(base64.b64encode(rng.randbytes(48)).decode() for _ in range(6))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


# Each format as its issuer documents it, and the gitleaks rule that must name it (None: no rule names
# the format itself, the entropy check must find it).
TOKENS: dict[str, tuple[str, str | None]] = {
    # GitHub: "ghp_" + 36 base62 (30 random and a 6-character checksum), fine-grained "github_pat_" + 82.
    "github classic PAT": ("ghp_" + chars(36), "github-pat"),
    "github fine-grained PAT": ("github_pat_" + chars(22) + "_" + chars(59), "github-fine-grained-pat"),
    "github OAuth token": ("gho_" + chars(36), "github-oauth"),
    # AWS: access key ids are AKIA + 16 base32 characters; secret keys 40 base64 characters.
    "AWS access key id": ("AKIA" + chars(16, string.ascii_uppercase + "234567"), "aws-access-token"),
    "AWS secret access key": (chars(40, BASE62 + "+/"), None),
    # Slack bot tokens: xoxb-<workspace digits>-<bot digits>-<24 alphanumerics>.
    "Slack bot token": (
        "xoxb-" + chars(12, string.digits) + "-" + chars(13, string.digits) + "-" + chars(24),
        "slack-bot-token",
    ),
    # Stripe secret keys: sk_live_ + alphanumerics (24 in the classic keys, longer since).
    "Stripe live key": ("sk_live_" + chars(24), "stripe-access-token"),
    "Stripe restricted key": ("rk_live_" + chars(99), "stripe-access-token"),
    # OpenAI: project keys sk-proj-<74>T3BlbkFJ<74> (base64 of "OpenAI"); legacy sk-<20>T3BlbkFJ<20>.
    "OpenAI project key": (
        "sk-proj-" + chars(74, BASE62 + "_-") + "T3BlbkFJ" + chars(74, BASE62 + "_-"),
        "openai-api-key",
    ),
    "OpenAI legacy key": ("sk-" + chars(20) + "T3BlbkFJ" + chars(20), "openai-api-key"),
    # Google API keys: AIza + 35 characters of [A-Za-z0-9_-].
    "Google API key": ("AIza" + chars(35, BASE62 + "_-"), "gcp-api-key"),
    # A JWT: base64url(header).base64url(claims).base64url(signature).
    "JWT": (
        b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        + "."
        + b64url(json.dumps({"sub": "svc-mcp", "iat": 1765000000, "scope": "read"}).encode())
        + "."
        + b64url(rng.randbytes(32)),
        "jwt",
    ),
    "RSA private key (PKCS#1 PEM)": (pem("RSA PRIVATE KEY"), "private-key"),
    "private key (PKCS#8 PEM)": (pem("PRIVATE KEY"), "private-key"),
    "OpenSSH private key": (pem("OPENSSH PRIVATE KEY"), "private-key"),
    "EC private key": (pem("EC PRIVATE KEY"), "private-key"),
    # No named format: random strings as password generators and HMAC keys give them.
    "random base62 password": (chars(32), None),
    "random hex key": (chars(64, "0123456789abcdef"), None),
    "random base64 key": (base64.b64encode(rng.randbytes(30)).decode(), None),
}


@pytest.mark.parametrize("name", TOKENS)
def test_each_token_format_is_found_by_the_rule_that_names_it(name: str) -> None:
    token, rule = TOKENS[name]
    kinds = {finding.kind for finding in scan_value(token)}
    if rule is None:
        assert any(kind.startswith("a random-looking") for kind in kinds), kinds
    else:
        assert f"gitleaks rule {rule}" in kinds, kinds
    # Whatever surrounds it: an argument, a setting, a sentence.
    for text in (f"--token={token}", f"Bearer {token}", f"the key is {token} (rotate monthly)"):
        assert scan_value(text), text


@pytest.mark.parametrize("name", TOKENS)
def test_a_finding_holds_the_token_to_redact_it(name: str) -> None:
    token, _ = TOKENS[name]
    for finding in scan_value(f"VALUE={token}"):
        assert finding.secret and finding.secret in f"VALUE={token}"
        # Never shown: the finding's repr leaves it out.
        assert finding.secret not in repr(finding)


def test_keyword_assignments_are_found_by_gitleaks_generic_rule() -> None:
    # gitleaks' generic rule reads a setting's name: `API_KEY: <high entropy>` in a value or a key.
    value = chars(18, string.ascii_lowercase + string.digits)
    assert "gitleaks rule generic-api-key" in {f.kind for f in scan_value(value, "API_KEY")}
    assert "gitleaks rule generic-api-key" in {f.kind for f in scan_value(f"api_key={value}")}


def test_a_password_in_a_url_is_found_however_short() -> None:
    findings = scan_value("postgresql://app:hunter2@db.internal:5432/app")
    assert [(f.kind, f.secret) for f in findings] == [("a password in a URL", "hunter2")]
    token = chars(40)
    assert scan_value(f"https://api.example.com/v1/search?access_token={token}&q=x")


# Values a catalog entry holds that must pass: URLs (with commit ids and digests in their paths), hosts,
# paths, versions, images, identifiers, public keys, references to values kept elsewhere.
BENIGN = [
    "https://github.com/modelcontextprotocol/servers/blob/4dc0dd426ef313531e03c567b93f6ec0a84a01a9/README.md",
    "https://github.com/org/repo/commit/0123456789abcdef0123456789abcdef01234567",
    "ghcr.io/github/github-mcp-server@sha256:4dc0dd426ef313531e03c567b93f6ec0a84a01a92ee54353b9762ca4289091f4",
    "https://hub.docker.com/layers/mcp/fetch/latest/images/sha256-4dc0dd426ef313531e03c567b93f6ec0a84a01a92ee54353b9762ca4289091f4",
    "sha512-Gx0Qo0uqqJeyoK3yv9Rkz4dFZ2oBOjtGeqDGGE3WzHo5tDQWJmNGeZzQbn0X3sNfVGRYSUqCKiAT3cBWtSYfw==",
    "--allowed-origins=https://a.example.com,https://b.example.com",
    "/data/mcp/storage/with-a-long-path/and_more_parts",
    "1.2.3-rc.1+build.5",
    "registry.k8s.io/ingress-nginx/controller:v1.9.4",
    "postgresql://app:$(DB_PASSWORD)@db.internal:5432/app?sslmode=require",
    "postgresql://app@db.internal:5432/app",
    "Europe/Amsterdam",
    "--max-old-space-size=4096",
    "@modelcontextprotocol/server-filesystem@2025.8.21",
    "123e4567-e89b-12d3-a456-426614174000",
    "arn:aws:iam::123456789012:role/mcp-reader",
    "projects/my-project-123456/locations/europe-west1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "io.github.modelcontextprotocol/server-everything",
    "mcp-server-sequential-thinking==2025.7.1",
    "https://api.search.brave.com/res/v1/web/search?q=kubernetes&count=20",
    "${GITHUB_TOKEN}",
    "$(NOTION_TOKEN)",
    "{{ .Values.image.tag }}",
    "--header=Authorization: Bearer $(API_TOKEN)",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3o3v8l2xW7t0yJjq0m8bXq9fN1m0bYc2p5e8nQk1s deploy@example.com",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
    "4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n-----END PUBLIC KEY-----\n",
    "python3.12/site-packages/mcp_server_fetch",
    "e2e-conformance-server-v20250618",
    "GOOGLE_APPLICATION_CREDENTIALS=/var/run/secrets/gcp/key.json",
    "token_endpoint_auth_method=client_secret_basic",
    "my-bucket-2024-eu-west-1-backups-archive",
    # AWS's own documented example key id: gitleaks allows it by name.
    "AKIAIOSFODNN7EXAMPLE",
]


@pytest.mark.parametrize("value", BENIGN)
def test_benign_values_pass(value: str) -> None:
    assert scan_value(value, "SETTING") == []


def sample_files() -> list[Path]:
    files = sample_entries()
    files += sorted((REPO / "examples" / "catalog" / "servers").glob("*.yaml"))
    return files


@sample_catalog
def test_every_sample_and_example_entry_passes() -> None:
    """Whatever the sample catalogs hold today: any valid entry must pass, so this runs over the files."""
    files = sample_files()
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        found = [(str(f.path), f.finding.kind) for f in scan_data(yaml.safe_load(text))]
        found += [("text", f.kind) for f in scan_text(text)]
        assert found == [], path


@pytest.mark.parametrize(
    ("alphabet", "length", "at_least"),
    [
        (BASE62, 24, 0.95),
        (BASE62, 40, 0.99),
        (BASE62 + "+/", 32, 0.95),
        ("0123456789abcdef", 32, 1.0),
        (string.ascii_lowercase + string.digits, 32, 0.75),
    ],
)
def test_random_tokens_are_found_by_entropy(alphabet: str, length: int, at_least: float) -> None:
    # Rates measured on 2,000 tokens each: base62 96% at 20 characters, 98.5% at 24, 99.8% at 40; base64
    # 90%/98%/99.5%; hex 100% from 32; lower-case base36 81-93% from 24; base32 about half (its classes
    # switch too rarely to tell from words): gitleaks' rules carry the named formats among those.
    local = random.Random(length)
    tokens = ["".join(local.choice(alphabet) for _ in range(length)) for _ in range(500)]
    found = sum(1 for token in tokens if random_tokens(token))
    assert found >= at_least * len(tokens)


def test_entropy_is_bits_per_character() -> None:
    assert shannon_entropy("") == 0
    assert shannon_entropy("aaaa") == 0
    assert shannon_entropy("abcd") == 2
    assert shannon_entropy("0123456789abcdef") == 4


def test_rules_load_and_all_compile() -> None:
    rules = gitleaks_rules()
    # 222 rules; the five that look at file paths have nothing to match in a value.
    assert len(rules.rules) == 217
    assert {"github-pat", "aws-access-token", "private-key", "generic-api-key"} <= {r.id for r in rules.rules}


def test_the_vendored_rules_are_the_recorded_release() -> None:
    """The rules and their licence are gitleaks v8.30.1's, byte for byte (README.md in their folder)."""
    folder = RULES_FILE.parent
    digests = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("gitleaks.toml", "LICENSE")
    }
    assert digests == {
        "gitleaks.toml": "e163e53b9e7e8a8511e77271e2b323ed057759542a6d988258afe3a1fa329caf",
        "LICENSE": "e3884b252b3bfc045e55be43a34d1e80da070bc6f804ac95bf4660e97d62ebc6",
    }
    readme = (folder / "README.md").read_text()
    assert all(digest in readme for digest in digests.values())
    assert "MIT License" in (folder / "LICENSE").read_text()


def test_overlapping_keywords_still_select_their_rules() -> None:
    # "sk_live" holds "sk_": a prefilter that reads one keyword per position would miss a rule.
    candidates = {rule.id for rule in gitleaks_rules().candidates("xsk_live_")}
    assert "stripe-access-token" in candidates


def test_scan_data_names_the_path_and_whether_a_key_holds_it() -> None:
    token = TOKENS["github classic PAT"][0]
    data = {"env": {"SAFE": "1", token: "x"}, "args": ["--x", f"--token={token}"]}
    found = {(f.path, f.in_key) for f in scan_data(data)}
    assert (("env", token), True) in found
    assert (("args", 1), False) in found
    assert all(path[0] != "env" or key for path, key in found)


def test_digest_fields_are_exempt_from_entropy_but_not_from_rules() -> None:
    digest = "sha256:" + "ab12" * 16
    assert scan_data({"image": {"digest": digest, "tag": chars(40, "0123456789abcdef")}}) == []
    token = TOKENS["github classic PAT"][0]
    assert scan_data({"image": {"tag": token}})
    assert secretscan.MIN_SECRET_LENGTH <= 8
