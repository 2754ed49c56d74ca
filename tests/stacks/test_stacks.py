"""Environment settings: the four stack files load, prod is the strictest, bad settings are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mcpfleet.errors import InvalidInput
from mcpfleet.model import ENVIRONMENTS
from mcpfleet.stacks.loader import check_env_name, load_stack_config
from mcpfleet.stacks.models import Environment

REPO = Path(__file__).resolve().parents[2]
STRICTNESS = ["relaxed", "standard", "strict"]


def settings(env: str) -> Environment:
    return load_stack_config(REPO / "stacks", env)[1]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stack_file_loads(env: str) -> None:
    config, environment = load_stack_config(REPO / "stacks", env)
    assert "mcpfleet:environment" in config
    assert environment.domain


def test_local_uses_an_existing_cluster_and_the_rest_eks() -> None:
    assert settings("local").cluster.provider == "existing"
    assert {settings(env).cluster.provider for env in ("dev", "staging", "prod")} == {"eks"}


def test_prod_is_the_strictest_environment() -> None:
    prod = settings("prod")
    for env in ("local", "dev", "staging"):
        other = settings(env)
        assert STRICTNESS.index(prod.strictness) >= STRICTNESS.index(other.strictness)
        assert prod.minimum_replicas >= other.minimum_replicas
        assert prod.default_replicas >= other.default_replicas
    assert prod.strictness == "strict"
    assert prod.minimum_replicas >= 2
    # Reachable by the deploy (it runs outside the VPC it creates), by the listed addresses only.
    assert prod.cluster.endpoint_public_access_cidrs
    assert all(not cidr.endswith("/0") for cidr in prod.cluster.endpoint_public_access_cidrs)


def write_stack(stacks_dir: Path, env: str, mutate: dict[str, object]) -> None:
    path = stacks_dir / f"Pulumi.{env}.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["mcpfleet:environment"].update(mutate)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        ({"defaultReplicas": 0}, "config.mcpfleet:environment.defaultReplicas", "must be 1 or more"),
        (
            {"strictness": "lax"},
            "config.mcpfleet:environment.strictness",
            "must be one of: relaxed, standard, strict",
        ),
        ({"domian": "x.example.com"}, "config.mcpfleet:environment.domian", "unknown field"),
        (
            {"defaultReplicas": 1, "minimumReplicas": 2},
            "config.mcpfleet:environment.defaultReplicas",
            "below minimumReplicas",
        ),
        (
            {"cluster": {"provider": "existing"}},
            "config.mcpfleet:environment.cluster.context",
            "an existing cluster needs `context`",
        ),
    ],
)
def test_bad_settings_name_file_line_and_field(
    stacks_dir: Path, mutate: dict[str, object], field: str, message: str
) -> None:
    write_stack(stacks_dir, "prod", mutate)
    with pytest.raises(InvalidInput) as caught:
        load_stack_config(stacks_dir, "prod")
    [problem] = caught.value.problems
    assert problem.file.endswith("Pulumi.prod.yaml")
    assert problem.line is not None
    assert problem.field == field
    assert message in problem.message


def test_unknown_mcpfleet_key_is_refused(stacks_dir: Path) -> None:
    path = stacks_dir / "Pulumi.dev.yaml"
    path.write_text(path.read_text() + "  mcpfleet:replicas: 3\n")
    with pytest.raises(InvalidInput, match=r"config\.mcpfleet:replicas: unknown mcpfleet setting"):
        load_stack_config(stacks_dir, "dev")


def test_eks_needs_three_zones_in_its_region(stacks_dir: Path) -> None:
    document = yaml.safe_load((stacks_dir / "Pulumi.prod.yaml").read_text())
    cluster = document["config"]["mcpfleet:environment"]["cluster"]
    write_stack(
        stacks_dir, "prod", {"cluster": {**cluster, "availabilityZones": ["us-east-1a", "eu-west-1b"]}}
    )
    with pytest.raises(InvalidInput, match="three distinct availabilityZones"):
        load_stack_config(stacks_dir, "prod")


def test_unknown_environment_name() -> None:
    with pytest.raises(InvalidInput, match="unknown environment 'qa'"):
        check_env_name("qa")
