"""The rule registry: every public module here defines one `RULE` (helpers start with `_`)."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from policies.rules._framework import Rule


@cache
def all_rules() -> tuple[Rule, ...]:
    """Every rule, sorted by id; a module without RULE is a mistake, not a helper."""
    rules = []
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        rule = getattr(module, "RULE", None)
        if not isinstance(rule, Rule):
            raise TypeError(f"{module.__name__} defines no RULE")
        rules.append(rule)
    ids = [rule.id for rule in rules]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"rule ids used twice: {', '.join(duplicated)}")
    return tuple(sorted(rules, key=lambda rule: rule.id))
