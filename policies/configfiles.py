"""The per-environment policy-pack config files, read the way the engine reads them.

`pulumi preview --policy-pack policies --policy-pack-config policies/config/<env>.json` hands the same
file to the pack that `policies.review` reads here, so the offline review and the engine agree on every
rule's enforcement level and properties. Regenerate after changing a rule's declared enforcement:
`python -m policies.configfiles`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mcpfleet.model import ENVIRONMENTS, EnvName
from policies.rules import all_rules
from policies.rules._framework import LEVELS, Level, Rule

CONFIG_DIR = Path(__file__).resolve().parent / "config"
# The pack's own default (PolicyPack(enforcement_level=...)) when neither the file nor "all" names a level.
PACK_DEFAULT: Level = "advisory"


def config_path(environment: EnvName) -> Path:
    return CONFIG_DIR / f"{environment}.json"


def render_config(environment: EnvName, rules: Sequence[Rule] | None = None) -> dict[str, Any]:
    """The config file a set of rules declares for environment: each level, and each property's default."""
    return {
        rule.id: {"enforcementLevel": rule.enforcement[environment], **rule.config_with_defaults(None)}
        for rule in (rules if rules is not None else all_rules())
    }


def load_config(environment: EnvName, directory: Path | None = None) -> dict[str, Any]:
    path = (directory or CONFIG_DIR) / f"{environment}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of policy names")
    return data


def _entry(config: Mapping[str, Any], name: str) -> tuple[Level | None, dict[str, Any]]:
    """A policy's entry: `"mandatory"` or `{"enforcementLevel": "mandatory", ...properties}`."""
    value = config.get(name)
    if value is None:
        return None, {}
    if isinstance(value, str):
        return _level(value, name), {}
    if not isinstance(value, Mapping):
        raise ValueError(f"policy config for {name} must be a level or an object")
    level = value.get("enforcementLevel")
    properties = {k: v for k, v in value.items() if k != "enforcementLevel"}
    return (_level(level, name) if level is not None else None), properties


def _level(value: object, name: str) -> Level:
    if value not in LEVELS:
        raise ValueError(
            f"policy config for {name}: enforcement level {value!r} is not one of {', '.join(LEVELS)}"
        )
    return value


def enforcement_level(config: Mapping[str, Any], rule_id: str) -> Level:
    """As the engine decides: the policy's own entry, else `all`, else the pack default.

    (Our policies declare no level in code: the environment's file is the one source.)
    """
    level, _ = _entry(config, rule_id)
    if level is None:
        level, _ = _entry(config, "all")
    return level or PACK_DEFAULT


def properties(config: Mapping[str, Any], rule_id: str) -> dict[str, Any]:
    return _entry(config, rule_id)[1]


def write_configs(directory: Path | None = None) -> list[Path]:
    written = []
    for environment in ENVIRONMENTS:
        path = (directory or CONFIG_DIR) / f"{environment}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(render_config(environment), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_configs():
        print(f"wrote {written_path}")
