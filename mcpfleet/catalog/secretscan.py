"""Find literal secrets in catalog entries: gitleaks' rules for known token formats, entropy for the rest.

Which scanner, and why. gitleaks' default rule set (vendored unchanged in `gitleaks/`, MIT, provenance
in its README) is the most complete maintained collection of token formats: 222 rules (217 on content,
five on file names), each with keywords, an entropy floor and allowlists, released with gitleaks
(v8.30.1, 2026). Yelp's detect-secrets was the other candidate, usable as a library: its last release
(1.5.0, May 2024) has no rule for GitHub's fine-grained tokens (`github_pat_`) or Google API keys
(`AIza`), its keyword and entropy plugins expect quoted source-code assignments rather than YAML values,
and its plugins carry network verifiers we would have to keep switched off. gitleaks' patterns are Go
regular expressions (RE2 syntax): Python's `re` rejects 25 of them (mid-pattern `(?i)`, `\\z`) and
reads `\\b` and `\\w` as Unicode where RE2 reads ASCII, so they run on RE2 itself (google-re2). The
engine below applies a rule as gitleaks' detector does (keywords, secret group, entropy floor, global
and rule allowlists); file-path rules and path allowlists never apply: a value has no path of its own.

No rule names a random token of no known format pasted on its own (`env: {FOO: <40 random chars>}`), so
a second check refuses random-looking tokens (see `_random_tokens`), calibrated so that the URLs,
hostnames, paths, versions, image names, digests and identifiers of catalog entries pass.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import re
import tomllib
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, cast

import re2

RULES_FILE = Path(__file__).parent / "gitleaks" / "gitleaks.toml"
# gitleaks' catch-all: a keyword (`key`, `token`, `secret`...) assigned a high-entropy value.
GENERIC_RULE = "generic-api-key"

Path_ = tuple[str | int, ...]


class _Match(Protocol):
    def start(self) -> int: ...
    def end(self) -> int: ...
    def groups(self) -> tuple[str | None, ...]: ...


class _Regex(Protocol):
    def search(self, text: str) -> _Match | None: ...
    def finditer(self, text: str) -> Iterator[_Match]: ...


def _compile(pattern: str) -> _Regex:
    return cast(_Regex, re2.compile(pattern))


@dataclass(frozen=True)
class Finding:
    """Something that looks like a secret. `secret` is only for redaction: never print it."""

    kind: str
    secret: str = field(repr=False)
    # Offset of the match in the scanned text.
    start: int = field(default=0, repr=False)
    # 0 for a named token format, 1 for gitleaks' catch-all rule, 2 for the entropy check: a field
    # with several findings is reported by its most specific one.
    generality: int = 0


@dataclass(frozen=True)
class _Allowlist:
    # gitleaks: with condition AND every check given must pass; with OR (the default) any regex or stopword.
    all_of: bool
    # What the regexes test: the secret (default), the whole match, or the line of the match.
    target: str
    regex: _Regex | None
    stopwords: tuple[str, ...]
    # A catalog value has no file path: an allowlist that needs a path to match never allows.
    needs_path: bool

    def allows(self, secret: str, match: str, line: str) -> bool:
        subject = {"match": match, "line": line}.get(self.target, secret)
        regex_ok = self.regex is not None and self.regex.search(subject) is not None
        lowered = secret.lower()
        stopword_ok = any(word in lowered for word in self.stopwords)
        if not self.all_of:
            return regex_ok or stopword_ok
        checks = []
        if self.needs_path:
            checks.append(False)
        if self.regex is not None:
            checks.append(regex_ok)
        if self.stopwords:
            checks.append(stopword_ok)
        return bool(checks) and all(checks)


@dataclass(frozen=True)
class _Rule:
    id: str
    regex: _Regex
    keywords: tuple[str, ...]
    entropy: float
    secret_group: int
    allowlists: tuple[_Allowlist, ...]


def _allowlists(section: Mapping[str, Any]) -> tuple[_Allowlist, ...]:
    # Older configs hold one `allowlist` table, newer ones a list of `allowlists`; the default has both.
    tables = list(section.get("allowlists", []))
    if "allowlist" in section:
        tables.append(section["allowlist"])
    found = []
    for table in tables:
        regexes = table.get("regexes", [])
        found.append(
            _Allowlist(
                all_of=str(table.get("condition", "OR")).upper() == "AND",
                target=table.get("regexTarget", "secret"),
                regex=_compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None,
                stopwords=tuple(sorted({word.lower() for word in table.get("stopwords", [])})),
                needs_path=bool(table.get("paths")),
            )
        )
    return tuple(found)


def shannon_entropy(text: str) -> float:
    """Bits per character, over the characters of text (gitleaks' and detect-secrets' measure)."""
    if not text:
        return 0.0
    length = len(text)
    return -sum(count / length * math.log2(count / length) for count in Counter(text).values())


class GitleaksRules:
    """gitleaks' rules, applied to one piece of text at a time."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.global_allowlists = _allowlists(config)
        rules = []
        for table in config.get("rules", []):
            # Rules that look at file names (with or without a regex) have nothing to match here.
            if "regex" not in table or "path" in table:
                continue
            rules.append(
                _Rule(
                    id=table["id"],
                    regex=_compile(table["regex"]),
                    keywords=tuple(keyword.lower() for keyword in table.get("keywords", [])),
                    entropy=float(table.get("entropy", 0.0)),
                    secret_group=int(table.get("secretGroup", 0)),
                    allowlists=_allowlists(table),
                )
            )
        self.rules = tuple(rules)
        # One pass over the text finds every keyword that occurs, overlapping ones included ("sk_live"
        # holds "sk_"): gitleaks' Aho-Corasick prefilter, as an RE2 set of literals.
        self._keywords = sorted({k for rule in self.rules for k in rule.keywords})
        self._keyword_set = re2.Set.SearchSet()
        for keyword in self._keywords:
            self._keyword_set.Add(re.escape(keyword))
        self._keyword_set.Compile()

    def candidates(self, text: str) -> tuple[_Rule, ...]:
        """The rules whose keywords occur in text (all of them for a rule without keywords)."""
        present = {self._keywords[index] for index in self._keyword_set.Match(text.lower()) or ()}
        return tuple(r for r in self.rules if not r.keywords or not present.isdisjoint(r.keywords))

    def scan(self, text: str, rules: Sequence[_Rule] | None = None) -> list[Finding]:
        """Findings in text; rules, when given, are candidates() of a text holding this one."""
        lowered = text.lower()
        found: list[Finding] = []
        for rule in self.candidates(text) if rules is None else rules:
            if rule.keywords and not any(k in lowered for k in rule.keywords):
                continue
            found.extend(self._apply(rule, text))
        return found

    def _apply(self, rule: _Rule, text: str) -> Iterator[Finding]:
        for hit in rule.regex.finditer(text):
            match = text[hit.start() : hit.end()].strip("\n")
            if not match:
                continue
            # As gitleaks: the secret is the rule's secret group, else the first non-empty group, else
            # the whole match; the regex is applied again to the match alone to find the groups.
            secret = match
            again = rule.regex.search(match)
            groups = again.groups() if again is not None else ()
            if rule.secret_group and len(groups) >= rule.secret_group:
                secret = groups[rule.secret_group - 1] or ""
            elif groups:
                secret = next((group for group in groups if group), match)
            if not secret:
                continue
            if rule.entropy and shannon_entropy(secret) <= rule.entropy:
                continue
            line = _line_around(text, hit.start(), hit.end())
            allowlists = (*self.global_allowlists, *rule.allowlists)
            if any(allowlist.allows(secret, match, line) for allowlist in allowlists):
                continue
            yield Finding(f"gitleaks rule {rule.id}", secret, hit.start(), int(rule.id == GENERIC_RULE))


def _line_around(text: str, start: int, end: int) -> str:
    first = text.rfind("\n", 0, start) + 1
    last = text.find("\n", end)
    return text[first : len(text) if last < 0 else last]


@functools.cache
def gitleaks_rules() -> GitleaksRules:
    """The vendored rule set, compiled once per process (about 50 ms)."""
    with RULES_FILE.open("rb") as handle:
        return GitleaksRules(tomllib.load(handle))


# The entropy check. A token is a run of the characters of hex, base64 and base64url: long random
# credentials are such runs; words, hosts (dots), URLs (colons) and most paths break into short ones.
_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{20,}={0,2}")
# Benign values that are long and random by nature, removed before tokens are cut: content digests,
# UUIDs (identifiers: tenants, pages, databases), public keys and certificates, and references to
# values kept elsewhere (Kubernetes' `$(VAR)`, shell `${VAR}`, templates `{{ ... }}`).
_BENIGN = re.compile(
    r"(?i:sha(?:1|224|256|384|512)[:_-]?[0-9a-f]{32,128}\b)"
    r"|\bsha(?:256|384|512)-[A-Za-z0-9+/]{43,86}={0,2}"
    r"|\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
    r"|-----BEGIN (?:PUBLIC KEY|RSA PUBLIC KEY|CERTIFICATE|X509 CRL)-----[\s\S]*?-----END [A-Z0-9 ]+-----"
    r"|\b(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com)"
    r" AAAA[0-9A-Za-z+/]+=*"
    r"|\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\{[A-Za-z_][A-Za-z0-9_]*\}|\{\{[^{}]*\}\}"
)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>`]+")
_HEX = re.compile(r"[0-9a-fA-F]+")
# Thresholds, measured on 2,000 random tokens per alphabet and length (the rates are in
# tests/catalog/test_secretscan.py, as floors) against every value of the sample, example and test
# catalogs. A random base62 or
# base64 token switches character class (lower, upper, digit) at about 60% of its neighbouring
# characters, and about as often as its class counts predict; catalog words with digits in them switch
# at under 20% (`context7-mcp`, `world-europe-65910000`). A random hex string of 32 or more carries 3.6
# bits or more a character (detect-secrets flags hex from 3.0).
MIN_TOKEN_LENGTH = 20
MIN_TWO_CLASS_LENGTH = 24
MIN_HEX_LENGTH = 32
HEX_ENTROPY = 3.0
MIN_SWITCH_RATE = 0.3
MIN_SWITCHES_OF_EXPECTED = 0.6
MIN_ENTROPY = 3.5
# Shorter strings are skipped: no credential format is this short, and most are field names.
MIN_SECRET_LENGTH = 8


def _char_class(char: str) -> int:
    return 0 if char.islower() else 1 if char.isupper() else 2 if char.isdigit() else 3


def _looks_random(token: str) -> bool:
    core = token.strip("=+/_-")
    if len(core) < MIN_TOKEN_LENGTH:
        return False
    if _HEX.fullmatch(core):
        return len(core) >= MIN_HEX_LENGTH and shannon_entropy(core) >= HEX_ENTROPY
    classes = [_char_class(char) for char in core if char.isascii() and char.isalnum()]
    counts = Counter(classes)
    # Letters and digits, and letters of both cases unless the token is long.
    if 2 not in counts or not ({0, 1} <= counts.keys() or len(core) >= MIN_TWO_CLASS_LENGTH):
        return False
    # Words and paths keep their letters and digits together (`context7`, `v20250618`); a random token
    # switches class about as often as its class counts let it: the runs test, many classes at once.
    pairs = len(classes) - 1
    switches = sum(1 for a, b in itertools.pairwise(classes) if a != b)
    same = sum(count * (count - 1) for count in counts.values()) / (len(classes) * pairs)
    expected = pairs * (1 - same)
    return (
        switches >= MIN_SWITCH_RATE * pairs
        and switches >= MIN_SWITCHES_OF_EXPECTED * expected
        and shannon_entropy(core) >= MIN_ENTROPY
    )


def _random_tokens(value: str) -> Iterator[Finding]:
    """Random-looking tokens in value, URLs included (their user info's password, whatever it looks
    like; random tokens in their path, query and fragment, except hex: commit ids and digests)."""
    if "://" not in value and _TOKEN.search(value) is None:
        return
    text = _BENIGN.sub(" ", value)
    rest = []
    in_paths = []
    cursor = 0
    for url in _URL.finditer(text):
        rest.append(text[cursor : url.start()])
        cursor = url.end()
        parts = urllib.parse.urlsplit(url.group())
        if parts.password:
            yield Finding("a password in a URL", parts.password, url.start(), 2)
        in_paths.append(parts.path)
        for name, item in urllib.parse.parse_qsl(
            f"{parts.query}&{parts.fragment}", keep_blank_values=False, errors="ignore"
        ):
            rest.append(f" {name} {item} ")
    rest.append(text[cursor:])
    for token in _TOKEN.finditer(" ".join(rest)):
        if _looks_random(token.group()):
            yield _random_finding(token.group())
    # Path segments, one at a time (a path's slashes would join them into one long token).
    for segment in "/".join(in_paths).split("/"):
        for token in _TOKEN.finditer(segment):
            if not _HEX.fullmatch(token.group().strip("=+/_-")) and _looks_random(token.group()):
                yield _random_finding(token.group())


def _random_finding(token: str) -> Finding:
    return Finding(f"a random-looking {len(token)}-character string", token, 0, 2)


def random_tokens(text: str) -> list[str]:
    """The random-looking tokens of text (the entropy check alone), to redact from a message."""
    return [finding.secret for finding in _random_tokens(text)]


def scan_value(
    value: str, context: str | None = None, entropy: bool = True, rules: Sequence[_Rule] | None = None
) -> list[Finding]:
    """Findings in one string; context is the mapping key it is the value of (keyword rules use it)."""
    fragment = value if context is None else f"{context}: {value}"
    found = gitleaks_rules().scan(fragment, rules)
    if entropy:
        found.extend(_random_tokens(value))
    return found


# Fields whose values are long random strings by design, exempt from the entropy check (gitleaks' rules
# still apply): digests are pattern-checked `sha256:` values; image tags, and the versions `mcpfleet new`
# takes from them, are often commit ids.
_ENTROPY_EXEMPT: tuple[Path_, ...] = (
    ("version",),
    ("packages", "*", "version"),
    ("image", "tag"),
    ("image", "digest"),
    ("environments", "*", "image", "tag"),
    ("environments", "*", "image", "digest"),
    ("tools", "*", "sha256"),
)


def _exempt(path: Path_) -> bool:
    return any(
        len(path) == len(pattern)
        and all(p == "*" or p == part for p, part in zip(pattern, path, strict=True))
        for pattern in _ENTROPY_EXEMPT
    )


@dataclass(frozen=True)
class LocatedFinding:
    """A finding at a path of the document; `in_key` when the mapping key at path is the secret."""

    path: Path_
    finding: Finding
    in_key: bool = False


class _Item(NamedTuple):
    path: Path_
    value: str
    context: str | None
    in_key: bool


def _items(data: object, path: Path_ = ()) -> Iterator[_Item]:
    """The document's strings of MIN_SECRET_LENGTH or more: keys (alone) and values (with their key)."""
    if isinstance(data, dict):
        for key, value in data.items():
            name = str(key)
            here = (*path, name)
            if len(name) >= MIN_SECRET_LENGTH:
                yield _Item(here, name, None, True)
            if isinstance(value, str):
                if len(value) >= MIN_SECRET_LENGTH:
                    yield _Item(here, value, name, False)
            elif isinstance(value, dict | list):
                yield from _items(value, here)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            if isinstance(item, str):
                if len(item) >= MIN_SECRET_LENGTH:
                    yield _Item((*path, index), item, None, False)
            elif isinstance(item, dict | list):
                yield from _items(item, (*path, index))
    elif isinstance(data, str) and len(data) >= MIN_SECRET_LENGTH:
        yield _Item(path, data, None, False)


def scan_data(data: object) -> list[LocatedFinding]:
    """Every finding in a parsed document's strings, mapping keys included.

    gitleaks' rules run once over the document's values, one a line (each as `key: value`, so keyword
    rules see the name it is given); a match belongs to the value it starts in.
    """
    items = list(_items(data))
    starts = []
    lines = []
    offset = 0
    for item in items:
        line = item.value if item.context is None else f"{item.context}: {item.value}"
        starts.append(offset)
        lines.append(line)
        offset += len(line) + 1
    found = []
    for finding in gitleaks_rules().scan("\n".join(lines)):
        item = items[bisect.bisect_right(starts, finding.start) - 1]
        found.append(LocatedFinding(item.path, finding, item.in_key))
    for item in items:
        if item.in_key or not _exempt(item.path):
            found.extend(LocatedFinding(item.path, f, item.in_key) for f in _random_tokens(item.value))
    return sorted(found, key=lambda f: f.finding.generality)


def scan_text(text: str) -> list[Finding]:
    """gitleaks' rules over a whole file, as gitleaks scans it: finds what no value holds (comments)."""
    return gitleaks_rules().scan(text)


def redact(text: str, secrets: Sequence[str]) -> str:
    """text with every occurrence of each secret replaced: the last guard before anything is shown."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
