"""local on a bare kind cluster: GIVEN the kind config the repository ships and the local stack, THEN the
cluster they describe is the one the stack deploys into, the gateway is a NodePort Service on the node port
kind maps to 127.0.0.1:443, and nothing waits for a load balancer nobody serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpfleet.errors import InvalidInput
from mcpfleet.plan.run import plan
from mcpfleet.stacks.loader import load_stack_config
from mcpfleet.stacks.models import CONFIG_KEY
from policies.review import review
from policies.rules import all_rules
from tests.sample import SAMPLE_CATALOG, sample_catalog

REPO = Path(__file__).resolve().parents[2]
KIND_CONFIG = REPO / "stacks" / "kind-local.yaml"


def kind_config() -> dict[str, Any]:
    config = yaml.safe_load(KIND_CONFIG.read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def test_the_kind_config_is_a_v1alpha4_cluster_named_for_the_local_context() -> None:
    config = kind_config()
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    _, settings = load_stack_config(REPO / "stacks", "local")
    # kind names a cluster's kubeconfig context kind-<name>.
    assert settings.cluster.provider == "existing"
    assert settings.cluster.context == f"kind-{config['name']}"


def test_the_gateway_node_port_is_mapped_to_loopback_443() -> None:
    _, settings = load_stack_config(REPO / "stacks", "local")
    [node] = kind_config()["nodes"]
    assert node["role"] == "control-plane"
    [mapping] = node["extraPortMappings"]
    assert mapping == {
        "containerPort": settings.gateway.node_port,
        "hostPort": 443,
        "listenAddress": "127.0.0.1",
        "protocol": "TCP",
    }
    # The gateway answers on https://<domain>/ from this machine: localtest.me names 127.0.0.1.
    assert settings.domain.endswith(".localtest.me")


@sample_catalog
def test_the_local_plan_exposes_the_gateway_on_that_node_port() -> None:
    result = plan("local", SAMPLE_CATALOG, REPO / "stacks", None)
    services = [r.inputs for r in result.registrations if r.inputs.get("kind") == "Service"]
    exposed = [s for s in services if s["spec"].get("type") in ("LoadBalancer", "NodePort")]
    assert [(s["metadata"]["name"], s["spec"]["type"]) for s in exposed] == [("mcp-gateway", "NodePort")]
    [port] = exposed[0]["spec"]["ports"]
    assert port["nodePort"] == kind_config()["nodes"][0]["extraPortMappings"][0]["containerPort"]
    [rule] = [r for r in all_rules() if r.id == "load-balancer-served"]
    assert review(result.registrations, "local", result.fleet, rules=[rule]) == []


def edit_local(stacks_dir: Path, **gateway: Any) -> None:
    path = stacks_dir / "Pulumi.local.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    settings = document["config"][CONFIG_KEY]["gateway"]
    for key, value in gateway.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


@sample_catalog
def test_without_the_node_port_the_review_blocks_local(stacks_dir: Path) -> None:
    edit_local(stacks_dir, nodePort=None)
    result = plan("local", SAMPLE_CATALOG, stacks_dir, None)
    blocking = [v for v in result.blocking if v.rule_id == "load-balancer-served"]
    assert blocking and "missing fix: gateway.nodePort" in blocking[0].message
    assert blocking[0].fix_place == "stack" and "`gateway.nodePort`" in blocking[0].fix


@pytest.mark.parametrize("value", [80, 29999, 32768])
def test_a_node_port_outside_the_range_is_refused(stacks_dir: Path, value: int) -> None:
    edit_local(stacks_dir, nodePort=value)
    with pytest.raises(InvalidInput, match="nodePort"):
        load_stack_config(stacks_dir, "local")


def test_a_node_port_is_refused_on_eks(stacks_dir: Path) -> None:
    path = stacks_dir / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["config"][CONFIG_KEY]["gateway"]["nodePort"] = 30443
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        load_stack_config(stacks_dir, "dev")
    assert "gateway.nodePort" in str(refused.value) and "existing cluster" in str(refused.value)
