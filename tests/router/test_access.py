"""Per-tool access: roles per declared tool, `*` for every declared tool, undeclared tools closed."""

from __future__ import annotations

from mcpfleet.router.access import ToolAccess
from mcpfleet.router.config import AccessRule

RULES = [
    AccessRule.model_validate({"tools": ["add_note", "list_notes"], "roles": ["support", "engineer"]}),
    AccessRule.model_validate({"tools": ["*"], "roles": ["engineer"]}),
]
TOOLS = ["add_note", "list_notes", "delete_note"]


def test_roles_per_tool() -> None:
    access = ToolAccess(TOOLS, RULES)
    assert access.allows("add_note", frozenset({"support"}))
    assert not access.allows("delete_note", frozenset({"support"}))
    assert access.allows("delete_note", frozenset({"engineer"}))
    assert access.allows("delete_note", frozenset({"support", "engineer"}))
    assert not access.allows("add_note", frozenset())
    assert not access.allows("add_note", frozenset({"Support"}))


def test_star_means_declared_tools_only() -> None:
    access = ToolAccess(TOOLS, RULES)
    assert not access.declared("get_env")
    assert not access.allows("get_env", frozenset({"engineer", "support"}))
    assert not access.allows("*", frozenset({"engineer"}))


def test_no_rules_closes_everything() -> None:
    access = ToolAccess(TOOLS, [])
    assert not any(access.allows(tool, frozenset({"engineer"})) for tool in TOOLS)
