"""MCP: no server or tool name imitates another (homoglyphs after NFKC, or one edit apart).

A lookalike server (`githib` beside `github`) or a tool shadowing another server's tool is how tool
poisoning and confused routing start; a reviewer should see it before it merges.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations

from policies.rules._fleet_cases import entry
from policies.rules._framework import Case, Context, Finding, Resource, Rule

# Characters read as one another in common fonts (a small subset of Unicode's confusables.txt, after
# NFKC has folded the compatibility forms). Multi-letter shapes first.
_CONFUSABLES = (
    ("rn", "m"),
    ("vv", "w"),
    ("0", "o"),
    ("1", "l"),
    ("i", "l"),
    ("5", "s"),
    ("_", "-"),
    (".", "-"),
)
_CYRILLIC = str.maketrans("аеорсхуікј", "aeopcxyikj")


def skeleton(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).casefold().translate(_CYRILLIC)
    for shape, letter in _CONFUSABLES:
        text = text.replace(shape, letter)
    return text


def one_edit_apart(a: str, b: str) -> bool:
    """Levenshtein distance exactly 1 (one substitution, insertion or deletion)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)) :] == b[i + 1 :]


def lookalike(a: str, b: str) -> str | None:
    if a == b:
        return None
    if skeleton(a) == skeleton(b):
        return "reads the same as"
    # Short names are one edit apart by chance (`get` / `set`); only longer ones are suspicious.
    if min(len(a), len(b)) >= 5 and one_edit_apart(a.casefold(), b.casefold()):
        return "is one edit away from"
    return None


def candidate_pairs(names: Sequence[str]) -> set[tuple[str, str]]:
    """Pairs that may be lookalikes, without comparing every pair (fleets have thousands of names).

    Same skeleton, or a shared one-deletion variant (two strings are one edit apart only if deleting one
    character from each, or from the longer one, gives the same string).
    """
    buckets: dict[str, set[str]] = defaultdict(set)
    for name in names:
        buckets["skeleton:" + skeleton(name)].add(name)
        folded = name.casefold()
        for variant in {folded} | {folded[:i] + folded[i + 1 :] for i in range(len(folded))}:
            buckets["delete:" + variant].add(name)
    pairs: set[tuple[str, str]] = set()
    for members in buckets.values():
        if len(members) > 1:
            pairs.update(combinations(sorted(members), 2))
    return pairs


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    if context.fleet is None:
        return []
    findings = []
    names = sorted(s.name for s in context.fleet.servers)
    for a, b in sorted(candidate_pairs(names)):
        how = lookalike(a, b)
        if how:
            findings.append(Finding(f"server {b} {how} server {a}", server=b))
    # Tools are compared across servers only (within a server, list_tag / list_tags is normal), and only
    # by skeleton: one edit apart is too common among tool names to flag.
    by_skeleton: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for server in context.fleet.servers:
        for tool in server.spec.tools:
            by_skeleton[skeleton(tool.name)].add((tool.name, server.name))
    for members in by_skeleton.values():
        for (tool_a, server_a), (tool_b, server_b) in combinations(sorted(members), 2):
            how = lookalike(tool_a, tool_b)
            if server_a != server_b and how:
                findings.append(
                    Finding(
                        f"server {server_b}: tool {tool_b} {how} tool {tool_a} of server {server_a}",
                        server=server_b,
                    )
                )
    return findings


RULE = Rule(
    id="fleet-lookalike-names",
    description="No server name, and no tool name across servers, is a lookalike of another.",
    severity="high",
    remediation="Rename the newer server (catalog file name and `name`) so it cannot be mistaken for the "
    "existing one; if it really is the same project, extend the existing entry instead.",
    catalog_fix="rename the newer server (`name`, and its file name) or, for a tool, check `tools[].name` "
    "against what the server lists; if it really is the same project, extend the existing entry instead",
    validate_stack=validate,
    tags=("mcp",),
    cases=(
        Case(
            "distinct names",
            "pass",
            fleet=(entry("github", ["search_code"]), entry("gitlab", ["search_code2"])),
        ),
        Case("one edit apart", "violate", fleet=(entry("github"), entry("githib"))),
        Case("digit for letter", "violate", fleet=(entry("google"), entry("goog1e"))),
        Case("rn for m", "violate", fleet=(entry("mcp-memory"), entry("mcp-rnemory"))),
        Case(
            "tool shadowing across servers",
            "violate",
            fleet=(entry("alpha", ["delete_file"]), entry("beta", ["delete-file"])),
        ),
    ),
)
