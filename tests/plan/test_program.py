"""The real Pulumi program under the recording mock engine, for every environment and the sample catalog
(whichever servers it holds: what is asserted holds for any valid catalog)."""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from mcpfleet.model import ENVIRONMENTS
from mcpfleet.plan.render import SERVER_TYPE, is_manifest
from mcpfleet.plan.run import PlanResult, plan
from tests.sample import SAMPLE_CATALOG, sample_catalog

REPO = Path(__file__).resolve().parents[2]
pytestmark = sample_catalog


@cache
def planned(env: str) -> PlanResult:
    return plan(env, SAMPLE_CATALOG, REPO / "stacks", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_enabled_server_gets_its_component_and_objects(env: str) -> None:
    result = planned(env)
    components = {r.name: r for r in result.registrations if r.type == SERVER_TYPE}
    assert sorted(components) == sorted(s.name for s in result.fleet.servers)
    for server in result.fleet.servers:
        kinds = Counter(
            r.inputs["kind"]
            for r in result.registrations
            if is_manifest(r) and r.parent == components[server.name].urn
        )
        assert kinds["Deployment"] == kinds["ServiceAccount"] == 1, server.name
        assert kinds["Service"] == 2, server.name  # its own, and the headless one the gateway resolves
        assert kinds["HorizontalPodAutoscaler"] == kinds["NetworkPolicy"] == kinds["ConfigMap"] == 1
        assert kinds["PodDisruptionBudget"] == (1 if server.min_replicas > 1 else 0)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_urns_are_unique_and_every_parent_exists(env: str) -> None:
    registrations = planned(env).registrations
    urns = [r.urn for r in registrations]
    assert len(urns) == len(set(urns))
    known = set(urns)
    stack_urn = f"urn:pulumi:{env}::mcpfleet::pulumi:pulumi:Stack::mcpfleet-{env}"
    assert all(r.parent in known or r.parent == stack_urn for r in registrations)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_deployment_is_hardened(env: str) -> None:
    deployments = [r.inputs for r in planned(env).registrations if r.inputs.get("kind") == "Deployment"]
    assert deployments  # the gateway's and the router's at least
    # Only a server whose catalog entry declares read access to the Kubernetes API mounts its token.
    readers = {s.name for s in planned(env).fleet.servers if s.spec.kubernetes_access is not None}
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] and context["readOnlyRootFilesystem"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
            assert (
                container["resources"]["limits"]
                and container["livenessProbe"]
                and container["readinessProbe"]
            )
        assert pod["automountServiceAccountToken"] is (deployment["metadata"]["name"] in readers)


def test_numbers_come_out_as_integers() -> None:
    deployment = next(r.inputs for r in planned("prod").registrations if r.inputs.get("kind") == "Deployment")
    assert type(deployment["spec"]["replicas"]) is int
    port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert type(port) is int


def test_prod_runs_at_least_two_replicas_of_everything() -> None:
    for server in planned("prod").fleet.servers:
        assert server.replicas >= 2 and server.min_replicas >= 2, server.name


def test_local_creates_no_aws_resource() -> None:
    types = {r.type for r in planned("local").registrations}
    assert not [t for t in types if t.startswith(("aws:", "pulumi:providers:aws"))]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_cloud_environments_build_their_cluster(env: str) -> None:
    types = Counter(r.type for r in planned(env).registrations)
    assert types["aws:eks/cluster:Cluster"] == 1
    assert types["aws:eks/nodeGroup:NodeGroup"] >= 1
    assert types["pulumi:providers:kubernetes"] == 1


def test_servers_are_placed_by_the_namespace_strategy() -> None:
    local = planned("local").fleet
    assert all(s.namespace == "mcp-servers" for s in local.servers)
    prod = planned("prod").fleet
    assert {s.namespace for s in prod.servers} == {f"mcp-{s.spec.owner.team}" for s in prod.servers}


@pytest.mark.parametrize("env", ["local", "prod"])
def test_parallel_plan_registers_exactly_what_one_process_does(env: str) -> None:
    parallel = plan(env, SAMPLE_CATALOG, REPO / "stacks", None, processes=3)  # type: ignore[arg-type]
    assert parallel.registrations == planned(env).registrations
    assert parallel.files == planned(env).files
