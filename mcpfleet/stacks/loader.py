"""Read an environment's settings from its Pulumi stack file, or from Pulumi config at run time."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mcpfleet.errors import InputProblem, InvalidInput, display_path
from mcpfleet.model import ENVIRONMENTS, EnvName
from mcpfleet.stacks.deploy import ProblemKind, deploy_problems
from mcpfleet.stacks.models import CONFIG_KEY, Environment
from mcpfleet.validation import problems_from, validate_document
from mcpfleet.yamlfile import YamlDocument, YamlError, read_yaml

# Keys of ours that a stack file may hold besides the environment settings: the catalog folder, local
# secret values (`pulumi config set --secret --path 'mcpfleet:secrets.<store key>'`) and Grafana's
# admin password (`pulumi config set --secret grafanaAdminPassword`), the token issuer's public key
# (`pulumi config set gatewayJwtPublicKey -- "$(cat issuer-public.pem)"`), the MCP router's session
# keys (`pulumi config set --secret routerSessionKeys`) and the router build to run, by digest
# (`pulumi config set routerImage <repository>@sha256:<digest>`, which the deploy workflow sets).
SECRETS_KEY = "mcpfleet:secrets"
GRAFANA_PASSWORD_KEY = "mcpfleet:grafanaAdminPassword"
GATEWAY_JWT_KEY = "mcpfleet:gatewayJwtPublicKey"
ROUTER_SESSION_KEYS_KEY = "mcpfleet:routerSessionKeys"
ROUTER_IMAGE_KEY = "mcpfleet:routerImage"
KNOWN_KEYS = {
    CONFIG_KEY,
    "mcpfleet:catalogDir",
    SECRETS_KEY,
    GRAFANA_PASSWORD_KEY,
    GATEWAY_JWT_KEY,
    ROUTER_SESSION_KEYS_KEY,
    ROUTER_IMAGE_KEY,
}
# `<repository>@sha256:<digest>`, a tag between them allowed (`<repository>:<tag>@sha256:<digest>`).
_PINNED_IMAGE = re.compile(
    r"^(?P<repository>[^@:\s]+(:[0-9]+/[^@:\s]+)?)(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[a-f0-9]{64}$"
)


def stack_file(stacks_dir: Path, env: str) -> Path:
    return stacks_dir / f"Pulumi.{env}.yaml"


def check_env_name(env: str) -> EnvName:
    if env not in ENVIRONMENTS:
        raise InvalidInput(
            [
                InputProblem(
                    "--env",
                    None,
                    None,
                    f"unknown environment {env!r}; choose one of {', '.join(ENVIRONMENTS)}",
                )
            ]
        )
    return env


def load_stack_config(stacks_dir: Path, env: str) -> tuple[dict[str, Any], Environment]:
    """The stack's whole `config` mapping (for Pulumi) and its validated environment settings."""
    path = stack_file(stacks_dir, env)
    shown = display_path(path)
    if not path.is_file():
        raise InvalidInput([InputProblem(shown, None, None, f"stack file for environment {env!r} not found")])
    try:
        document = read_yaml(path, shown)
    except YamlError as exc:
        raise InvalidInput([exc.problem]) from None
    config = document.data.get("config") if isinstance(document.data, dict) else None
    if not isinstance(config, dict):
        raise InvalidInput([InputProblem(shown, 1, "config", "expected a `config:` mapping")])
    problems = [
        InputProblem(shown, document.line_of(("config", key)), f"config.{key}", "unknown mcpfleet setting")
        for key in config
        if str(key).startswith("mcpfleet:") and key not in KNOWN_KEYS
    ]
    if CONFIG_KEY not in config:
        problems.append(
            InputProblem(shown, document.line_of(("config",)), f"config.{CONFIG_KEY}", "required")
        )
    if problems:
        raise InvalidInput(problems)
    environment, found = validate_document(Environment, document, shown, ("config", CONFIG_KEY))
    if environment is None:
        raise InvalidInput(found)
    if ROUTER_IMAGE_KEY in config:
        problem = router_image_problem(config[ROUTER_IMAGE_KEY], environment)
        if problem is not None:
            line = document.line_of(("config", ROUTER_IMAGE_KEY))
            raise InvalidInput([InputProblem(shown, line, f"config.{ROUTER_IMAGE_KEY}", problem)])
    return config, environment


def router_image_problem(value: Any, environment: Environment) -> str | None:
    """What is wrong with a `routerImage` setting, or None: it must name an image of the stack's
    `router.imageRepository` by digest, the pin the release workflow reports."""
    repository = environment.router.image_repository
    match = _PINNED_IMAGE.match(value) if isinstance(value, str) else None
    if match is None:
        return (
            f"expected {repository}@sha256:<64 hex digits> (the digest the release workflow reports),"
            f" got {value!r}"
        )
    if match.group("repository") != repository:
        return f"names an image of {match.group('repository')}, not of router.imageRepository ({repository})"
    return None


def environment_from_config(raw: Any, where: str, env: str | None = None) -> Environment:
    """Validate settings handed over by the Pulumi engine (`pulumi up`), naming the stack file.

    env: the stack being deployed, when this is a deploy (not a preview or a plan): then the values only
    its owner can give must be there too (`mcpfleet.stacks.deploy`).
    """
    try:
        settings = Environment.model_validate(raw)
    except ValidationError as exc:
        document = YamlDocument(raw)
        raise InvalidInput(problems_from(exc, document, where, ("config", CONFIG_KEY), Environment)) from None
    if env is not None:
        document = YamlDocument({"config": {CONFIG_KEY: raw}})
        found = deploy_input_problems(settings, env, document, where)
        if found:
            raise InvalidInput(found)
    return settings


def deploy_input_problems(
    settings: Environment, env: str, document: YamlDocument, shown: str, only: ProblemKind | None = None
) -> list[InputProblem]:
    """The stack's deploy problems (of kind only, when given) as input problems: file, line, setting, and
    the command that sets it."""
    return [
        InputProblem(
            shown,
            document.line_of(("config", CONFIG_KEY, *problem.path)),
            f"config.{CONFIG_KEY}.{problem.field}",
            problem.describe(),
        )
        for problem in deploy_problems(settings, env)
        if only is None or problem.kind == only
    ]


def stack_deploy_problems(
    stacks_dir: Path, env: str, settings: Environment, only: ProblemKind | None = None
) -> list[InputProblem]:
    """What a deploy of this (valid) stack file would fail for want of: values only its owner can give
    (admin principals, the deploy runners' CIDRs, the Route53 zone, a domain, the token issuer, the
    router's image repository), each with its line; only: `missing` (refused everywhere) or `example`
    (shipped example values: refused for a deploy only)."""
    path = stack_file(stacks_dir, env)
    shown = display_path(path)
    try:
        document = read_yaml(path, shown)
    except YamlError as exc:
        return [exc.problem]
    return deploy_input_problems(settings, env, document, shown, only)
