"""Deployability review: GIVEN the program's plan of an environment, THEN the rules that catch a failing
first `pulumi up` pass; WHEN any one fix is taken out (the issuer, the StorageClass, the CNI setting,
metrics-server, the admin access entry, the reachable endpoint, the node group's size, an object's order
after its namespace or after the chart of its CRD, a chart's wait for its webhook, a deploy not waiting for
pods whose secret values come later), THEN the review fails, blocking, with a message naming the missing
fix."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpfleet.model import ENVIRONMENTS
from mcpfleet.plan.engine import Registration
from mcpfleet.plan.run import PlanResult, plan
from mcpfleet.stacks.models import CONFIG_KEY
from policies.review import Violation, mandatory, review
from policies.rules import all_rules
from tests.conftest import REPO
from tests.sample import SAMPLE_CATALOG, sample_catalog

GOLDEN_CATALOG = REPO / "tests" / "golden" / "catalog"
DEPLOYABILITY = (
    "autoscaler-metrics-source",
    "certificate-issuer-exists",
    "custom-resource-after-crd",
    "eks-admin-access",
    "eks-endpoint-reachable",
    "load-balancer-served",
    "namespace-ordered-first",
    "network-policy-enforced",
    "node-capacity",
    "secret-source-exists",
    "volume-claim-storage-class",
)
RULES = [rule for rule in all_rules() if rule.id in DEPLOYABILITY]


def deployability(result: PlanResult, registrations: Iterable[Any] | None = None) -> list[Violation]:
    regs = list(result.registrations if registrations is None else registrations)
    return review(regs, result.fleet.environment, result.fleet, rules=RULES)


@pytest.fixture(scope="module")
def dev() -> PlanResult:
    return plan("dev", GOLDEN_CATALOG, REPO / "stacks", None)


def test_every_deployability_rule_is_registered_and_blocks_everywhere() -> None:
    assert sorted(rule.id for rule in RULES) == sorted(DEPLOYABILITY)
    for rule in RULES:
        assert set(rule.enforcement.values()) == {"mandatory"}, rule.id


@sample_catalog
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_sample_catalog_passes_every_deployability_rule(env: str) -> None:
    result = plan(env, SAMPLE_CATALOG, REPO / "stacks", None)  # type: ignore[arg-type]
    assert [v.describe() for v in deployability(result)] == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_golden_catalog_passes_every_deployability_rule(env: str) -> None:
    result = plan(env, GOLDEN_CATALOG, REPO / "stacks", None)  # type: ignore[arg-type]
    assert [v.describe() for v in deployability(result)] == []


def without(result: PlanResult, drop: Callable[[Registration], bool]) -> list[Registration]:
    kept = [r for r in result.registrations if not drop(r)]
    assert len(kept) < len(result.registrations), "the fix to take out is not in the plan"
    return kept


def changed(
    result: PlanResult, match: Callable[[Registration], bool], change: Callable[[dict[str, Any]], None]
) -> list[Registration]:
    out, hits = [], 0
    for r in result.registrations:
        if match(r):
            inputs = json.loads(json.dumps(r.inputs))
            change(inputs)
            r, hits = dataclasses.replace(r, inputs=inputs), hits + 1
        out.append(r)
    assert hits, "the fix to change is not in the plan"
    return out


def only_failure(violations: list[Violation], rule_id: str, words: str) -> None:
    """The review fails, blocking, on rule_id alone, and says what is missing."""
    assert violations, f"{rule_id} did not notice"
    assert {v.rule_id for v in violations} == {rule_id}, [v.describe() for v in violations]
    assert mandatory(violations) == violations
    assert all(words in v.message for v in violations), [v.message for v in violations]


def _addon(name: str) -> Callable[[Registration], bool]:
    return lambda r: r.type == "aws:eks/addon:Addon" and r.inputs.get("addonName") == name


def test_without_the_cluster_issuer(dev: PlanResult) -> None:
    regs = without(dev, lambda r: r.type == "kubernetes:cert-manager.io/v1:ClusterIssuer")
    only_failure(deployability(dev, regs), "certificate-issuer-exists", "missing fix: the issuer")


def test_without_the_storage_class(dev: PlanResult) -> None:
    regs = without(dev, lambda r: r.type == "kubernetes:storage.k8s.io/v1:StorageClass")
    only_failure(
        deployability(dev, regs), "volume-claim-storage-class", "missing fix: a default StorageClass"
    )


def test_without_the_cni_setting(dev: PlanResult) -> None:
    regs = changed(dev, _addon("vpc-cni"), lambda inputs: inputs.pop("configurationValues"))
    only_failure(deployability(dev, regs), "network-policy-enforced", '{"enableNetworkPolicy": "true"}')


def test_without_metrics_server_on_eks(dev: PlanResult) -> None:
    regs = without(dev, _addon("metrics-server"))
    only_failure(deployability(dev, regs), "autoscaler-metrics-source", "missing fix: metrics-server")


def test_without_metrics_server_on_kind() -> None:
    local = plan("local", GOLDEN_CATALOG, REPO / "stacks", None)
    regs = without(
        local, lambda r: r.type.startswith("kubernetes:helm") and r.inputs["chart"] == "metrics-server"
    )
    only_failure(deployability(local, regs), "autoscaler-metrics-source", "missing fix: metrics-server")


def test_without_an_admin_access_entry(dev: PlanResult) -> None:
    regs = without(dev, lambda r: r.type.startswith("aws:eks/access"))
    only_failure(deployability(dev, regs), "eks-admin-access", "missing fix: an admin access entry")


def test_with_a_private_endpoint(dev: PlanResult) -> None:
    def private(inputs: dict[str, Any]) -> None:
        inputs["vpcConfig"] = {"endpointPrivateAccess": True, "endpointPublicAccess": False}

    regs = changed(dev, lambda r: r.type == "aws:eks/cluster:Cluster", private)
    only_failure(deployability(dev, regs), "eks-endpoint-reachable", "missing fix: the runners' addresses")


def test_with_too_few_nodes(dev: PlanResult) -> None:
    # One c7i.large (2 vCPU, 4 GiB): istiod, CoreDNS, metrics-server and the EBS controller alone ask for
    # more memory than it has left after the per-node agents, whatever the catalog holds.
    def one_node(inputs: dict[str, Any]) -> None:
        inputs["instanceTypes"] = ["c7i.large"]
        inputs["scalingConfig"] = {"minSize": 1, "desiredSize": 1, "maxSize": 4}

    regs = changed(dev, lambda r: r.type == "aws:eks/nodeGroup:NodeGroup", one_node)
    only_failure(deployability(dev, regs), "node-capacity", "missing fix: a node group sized for it")


def reordered(
    result: PlanResult, match: Callable[[Registration], bool], drop: Callable[[str], bool]
) -> list[Registration]:
    """The plan with the dependencies drop matches taken from the registrations match matches."""
    out, hits = [], 0
    for r in result.registrations:
        if match(r) and any(drop(urn) for urn in r.dependencies):
            kept = tuple(urn for urn in r.dependencies if not drop(urn))
            r, hits = dataclasses.replace(r, dependencies=kept), hits + 1
        out.append(r)
    assert hits, "the ordering to take out is not in the plan"
    return out


def test_the_pod_monitors_wait_for_the_gateway_namespace(dev: PlanResult) -> None:
    # Issue 11, item 10: they used to wait only for the monitoring chart.
    regs = reordered(
        dev, lambda r: r.inputs.get("kind") == "PodMonitor", lambda urn: urn.endswith("::gateway-namespace")
    )
    only_failure(deployability(dev, regs), "namespace-ordered-first", "missing fix: depends_on the Namespace")


def test_the_cluster_issuer_waits_for_cert_manager(dev: PlanResult) -> None:
    regs = reordered(
        dev,
        lambda r: r.inputs.get("kind") == "ClusterIssuer",
        lambda urn: urn.endswith("::addons-cert-manager"),
    )
    only_failure(deployability(dev, regs), "custom-resource-after-crd", "missing fix: depends_on the chart")


@pytest.mark.parametrize(
    ("chart_name", "path"),
    [
        ("cert-manager", ("webhook", "validatingWebhookConfigurationAnnotations")),
        ("external-secrets", ("webhook", "annotations")),
    ],
)
def test_a_chart_waits_for_its_webhook(dev: PlanResult, chart_name: str, path: tuple[str, str]) -> None:
    def no_wait(inputs: dict[str, Any]) -> None:
        inputs["values"][path[0]].pop(path[1])

    regs = changed(
        dev, lambda r: r.type.startswith("kubernetes:helm") and r.inputs["chart"] == chart_name, no_wait
    )
    only_failure(deployability(dev, regs), "custom-resource-after-crd", "before its webhook can be called")


@pytest.mark.parametrize("kind", ["Deployment", "Service"])
def test_the_deploy_does_not_wait_for_servers_whose_values_come_later(dev: PlanResult, kind: str) -> None:
    # Issue 11, item 4: the servers' secrets are created empty; their pods wait for the values.
    def awaited(inputs: dict[str, Any]) -> None:
        inputs["metadata"]["annotations"].pop("pulumi.com/skipAwait")

    regs = changed(
        dev,
        lambda r: (
            r.inputs.get("kind") == kind
            and "pulumi.com/skipAwait" in r.inputs["metadata"].get("annotations", {})
        ),
        awaited,
    )
    only_failure(deployability(dev, regs), "secret-source-exists", "missing fix: the pulumi.com/skipAwait")


def test_a_load_balancer_on_kind() -> None:
    # Issue 11, item 5: on kind nothing fills a LoadBalancer Service's ingress.
    local = plan("local", GOLDEN_CATALOG, REPO / "stacks", None)

    def load_balancer(inputs: dict[str, Any]) -> None:
        inputs["spec"]["type"] = "LoadBalancer"
        for port in inputs["spec"]["ports"]:
            port.pop("nodePort", None)

    regs = changed(
        local, lambda r: r.inputs.get("kind") == "Service" and r.name == "gateway-service", load_balancer
    )
    only_failure(deployability(local, regs), "load-balancer-served", "missing fix: gateway.nodePort")


def test_an_nlb_without_its_controller(dev: PlanResult) -> None:
    regs = without(
        dev,
        lambda r: (
            r.type.startswith("kubernetes:helm") and r.inputs["chart"] == "aws-load-balancer-controller"
        ),
    )
    only_failure(deployability(dev, regs), "load-balancer-served", "missing fix: the controller's chart")


def test_a_server_reading_a_secret_nothing_creates(dev: PlanResult) -> None:
    regs = without(dev, lambda r: r.inputs.get("kind") == "ExternalSecret")
    only_failure(deployability(dev, regs), "secret-source-exists", "which nothing in this stack creates")


# The same through the stack settings a user edits


def stack_without(tmp_path: Path, env: str, **settings: Any) -> Path:
    stacks = tmp_path / "stacks"
    stacks.mkdir(exist_ok=True)
    for path in (REPO / "stacks").glob("Pulumi.*.yaml"):
        (stacks / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    path = stacks / f"Pulumi.{env}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    environment = document["config"][CONFIG_KEY]
    for key, value in settings.items():
        target = (
            environment["cluster"]
            if key in ("adminPrincipalArns", "endpointPublicAccessCidrs")
            else environment
        )
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return stacks


@pytest.mark.parametrize(
    ("settings", "rule_id", "words"),
    [
        ({"dns": None}, "certificate-issuer-exists", "missing fix: the issuer"),
        ({"adminPrincipalArns": None}, "eks-admin-access", "missing fix: an admin access entry"),
        (
            {"endpointPublicAccessCidrs": None},
            "eks-endpoint-reachable",
            "missing fix: the runners' addresses",
        ),
    ],
)
def test_a_stack_missing_a_deploy_value_fails_the_review(
    tmp_path: Path, settings: dict[str, Any], rule_id: str, words: str
) -> None:
    result = plan("staging", GOLDEN_CATALOG, stack_without(tmp_path, "staging", **settings), None)
    only_failure(deployability(result), rule_id, words)
    # And `mcpfleet plan` exits 1 on it: the rule blocks in every environment.
    assert {v.rule_id for v in result.blocking} & set(DEPLOYABILITY) == {rule_id}
