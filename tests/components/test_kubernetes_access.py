"""A server that reads the Kubernetes API (catalog `kubernetesAccess`): GIVEN an entry that declares it,
THEN that server alone gets its ServiceAccount token, a read-only ClusterRole bound to that account, and
egress to the API server; WHEN an entry asks for a wildcard, Secrets or a subresource that runs commands,
THEN the catalog refuses it by field; WHEN the rendered RBAC or token mount is widened, THEN the review
blocks it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.manifests.network import EKS_API_SERVICE_ADDRESSES, PRIVATE_RANGES
from components.manifests.rbac import cluster_role_name
from components.server import server_objects
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.errors import InvalidInput
from mcpfleet.fleet import Fleet, FleetServer, resolve_fleet
from mcpfleet.plan.engine import Registration
from mcpfleet.plan.run import PlanResult, plan
from policies.review import Violation, review
from policies.rules import all_rules
from tests.components.test_mesh import environment

REPO = Path(__file__).resolve().parents[2]
READ = [
    {"apiGroups": [""], "resources": ["pods", "pods/log", "events"]},
    {"apiGroups": ["apps"], "resources": ["deployments"]},
]


def entry(name: str, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": name,
        "title": name.title(),
        "description": "A server of the Kubernetes access tests.",
        "version": "1.0.0",
        "owner": {"team": "platform", "contact": "platform@example.com"},
        "repository": {"url": f"https://github.com/example/{name}", "source": "github"},
        "image": {"repository": f"ghcr.io/example/{name}", "tag": "1.0.0"},
        "transport": {"type": "streamable-http", "port": 8080, "path": "/mcp"},
        "environments": {"local": {}, "dev": {}},
    }
    result.update(fields)
    return result


def write_catalog(root: Path, *entries: dict[str, Any]) -> Path:
    servers = root / "catalog" / "servers"
    servers.mkdir(parents=True)
    for item in entries:
        (servers / f"{item['name']}.yaml").write_text(yaml.safe_dump(item), encoding="utf-8")
    return root / "catalog"


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path, entry("kube", kubernetesAccess={"read": READ}), entry("plain"))


def fleet(catalog: Path, env: str) -> Fleet:
    return resolve_fleet(load_catalog(catalog), env, environment(env), "stack")  # type: ignore[arg-type]


def server(catalog: Path, env: str, name: str) -> FleetServer:
    return next(s for s in fleet(catalog, env).servers if s.name == name)


# The objects


@pytest.mark.parametrize("env", ["local", "dev"])
def test_only_the_declaring_server_gets_a_token_and_a_read_only_cluster_role(catalog: Path, env: str) -> None:
    kube, plain = server(catalog, env, "kube"), server(catalog, env, "plain")
    objects = server_objects(kube, environment(env))
    pod = objects["kube-deployment"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True and pod["serviceAccountName"] == "kube"
    # The account itself mounts nothing by default: only this pod spec asks for its token.
    assert objects["kube"]["automountServiceAccountToken"] is False
    role = objects["kube-cluster-role"]
    assert (role["kind"], role["metadata"]["name"]) == ("ClusterRole", cluster_role_name(kube))
    assert "namespace" not in role["metadata"]
    assert role["rules"] == [{**rule, "verbs": ["get", "list", "watch"]} for rule in READ]
    binding = objects["kube-cluster-role-binding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role_name(kube),
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kube", "namespace": kube.namespace}]
    others = server_objects(plain, environment(env))
    assert others["plain-deployment"]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert not [o for o in others.values() if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def api_rules(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for rule in policy["spec"]["egress"] if any("ipBlock" in peer for peer in rule["to"])]


def test_on_eks_the_api_server_is_reached_in_the_vpc_and_at_the_kubernetes_service(catalog: Path) -> None:
    settings = environment("dev")
    kube = server(catalog, "dev", "kube")
    [rule] = api_rules(server_objects(kube, settings)["kube-network-policy"])
    assert [peer["ipBlock"]["cidr"] for peer in rule["to"]] == [
        settings.cluster.vpc_cidr,
        *EKS_API_SERVICE_ADDRESSES,
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}]
    plain = server(catalog, "dev", "plain")
    assert api_rules(server_objects(plain, settings)["plain-network-policy"]) == []


def test_on_kind_the_api_server_is_reached_in_private_ranges_on_its_ports(catalog: Path) -> None:
    kube = server(catalog, "local", "kube")
    [rule] = api_rules(server_objects(kube, environment("local"))["kube-network-policy"])
    assert [peer["ipBlock"]["cidr"] for peer in rule["to"]] == PRIVATE_RANGES
    assert {p["port"] for p in rule["ports"]} == {443, 6443}


# The catalog refuses what no server may have


@pytest.mark.parametrize(
    ("read", "field", "words"),
    [
        ([{"apiGroups": [""], "resources": ["secrets"]}], "resources[0]", "never granted"),
        ([{"apiGroups": [""], "resources": ["pods", "pods/exec"]}], "resources[1]", "never granted"),
        ([{"apiGroups": [""], "resources": ["nodes/proxy"]}], "resources[0]", "never granted"),
        ([{"apiGroups": [""], "resources": ["*"]}], "resources[0]", "no wildcard"),
        ([{"apiGroups": ["*"], "resources": ["pods"]}], "apiGroups[0]", "no wildcard"),
        ([{"apiGroups": ["apps"], "resources": ["Deployments"]}], "resources[0]", "not a resource name"),
    ],
)
def test_an_entry_asking_for_too_much_is_refused_by_field(
    tmp_path: Path, read: list[dict[str, Any]], field: str, words: str
) -> None:
    root = write_catalog(tmp_path, entry("kube", kubernetesAccess={"read": read}))
    with pytest.raises(InvalidInput) as refused:
        load_catalog(root)
    [problem] = refused.value.problems
    assert problem.file.endswith("kube.yaml") and problem.field == f"kubernetesAccess.read[0].{field}"
    assert words in problem.message


# The review, on the program's plan


@pytest.fixture
def dev_plan(catalog: Path) -> PlanResult:
    return plan("dev", catalog, REPO / "stacks", None)


RULES = [rule for rule in all_rules() if rule.id in ("rbac-server-read-only", "pod-no-service-account-token")]


def reviewed(result: PlanResult, registrations: list[Registration]) -> list[Violation]:
    return review(registrations, "dev", result.fleet, rules=RULES)


def test_the_plan_passes_the_rbac_and_token_rules(dev_plan: PlanResult) -> None:
    kinds = {(r.inputs.get("kind"), r.inputs.get("metadata", {}).get("name")) for r in dev_plan.registrations}
    assert ("ClusterRole", "mcp-server-kube-read") in kinds and (
        "ClusterRoleBinding",
        "mcp-server-kube-read",
    ) in kinds
    assert [v.describe() for v in reviewed(dev_plan, dev_plan.registrations)] == []


def tampered(result: PlanResult, name: str, change: Any) -> list[Registration]:
    out = []
    for r in result.registrations:
        if r.name == name:
            inputs = json.loads(json.dumps(r.inputs))
            change(inputs)
            r = dataclasses.replace(r, inputs=inputs)
        out.append(r)
    return out


@pytest.mark.parametrize(
    ("name", "change", "rule_id"),
    [
        (
            "kube-cluster-role",
            lambda i: i["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
            "rbac-server-read-only",
        ),
        ("kube-cluster-role", lambda i: i["rules"][0]["verbs"].append("delete"), "rbac-server-read-only"),
        (
            "kube-cluster-role-binding",
            lambda i: i["roleRef"].update(name="cluster-admin"),
            "rbac-server-read-only",
        ),
        (
            "plain-deployment",
            lambda i: i["spec"]["template"]["spec"].update(automountServiceAccountToken=True),
            "pod-no-service-account-token",
        ),
    ],
)
def test_widening_what_the_program_renders_is_blocked(
    dev_plan: PlanResult, name: str, change: Any, rule_id: str
) -> None:
    violations = reviewed(dev_plan, tampered(dev_plan, name, change))
    assert {v.rule_id for v in violations} == {rule_id}
