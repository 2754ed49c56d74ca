"""What each environment's plan provisions around the servers (issue: platform components per environment)."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpfleet.plan.engine import Registration
from mcpfleet.plan.run import PlanResult, plan
from tests.conftest import minimal_server
from tests.sample import SAMPLE_CATALOG, copy_sample, sample_catalog

REPO = Path(__file__).resolve().parents[2]
pytestmark = sample_catalog
# A server of the tests' own that reads a secret, so the sample need not.
SECRET_READER = minimal_server(
    "secret-reader", secrets=[{"key": "tests/secret-reader/token", "env": "READER_TOKEN"}]
)


@cache
def planned(env: str) -> PlanResult:
    return plan(env, SAMPLE_CATALOG, REPO / "stacks", None)  # type: ignore[arg-type]


def of_type(env: str, type_: str) -> list[Registration]:
    return [r for r in planned(env).registrations if r.type == type_]


def of_kind(env: str, kind: str) -> list[dict[str, Any]]:
    return [r.inputs for r in planned(env).registrations if r.inputs.get("kind") == kind]


def test_prod_builds_the_cluster_network_encryption_logs_nodes_and_identity() -> None:
    assert len(of_type("prod", "aws:ec2/vpc:Vpc")) == 1
    assert len(of_type("prod", "aws:ec2/subnet:Subnet")) == 6
    [cluster] = of_type("prod", "aws:eks/cluster:Cluster")
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert "audit" in cluster.inputs["enabledClusterLogTypes"]
    # Public to the deploy runners' CIDRs only (the deploy runs outside the VPC it creates).
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is True
    assert cluster.inputs["vpcConfig"]["publicAccessCidrs"] and "0.0.0.0/0" not in str(cluster.inputs)
    assert of_type("prod", "aws:eks/nodeGroup:NodeGroup")
    assert of_type("prod", "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    [template] = of_type("prod", "aws:ec2/launchTemplate:LaunchTemplate")
    assert template.inputs["metadataOptions"]["httpTokens"] == "required"


def test_prod_mesh_is_strict_and_authorizes_each_server() -> None:
    strict = [
        p for p in of_kind("prod", "PeerAuthentication") if p["metadata"]["namespace"] == "istio-system"
    ]
    assert [p["spec"]["mtls"]["mode"] for p in strict] == ["STRICT"]
    charts = {r.inputs["chart"] for r in of_type("prod", "kubernetes:helm.sh/v4:Chart")}
    assert {"base", "istiod", "cni", "ztunnel"} <= charts
    policies = {p["metadata"]["name"] for p in of_kind("prod", "AuthorizationPolicy")}
    assert {s.name for s in planned("prod").fleet.servers} <= policies


def test_prod_has_a_secrets_manager_secret_per_reference_synced_by_external_secrets(tmp_path: Path) -> None:
    # Every sample server in prod, whatever the sample's prod holds today, and one of ours that reads a
    # secret.
    catalog = copy_sample(tmp_path / "catalog", **{"secret-reader": SECRET_READER})
    for path in (catalog / "servers").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.pop("decommissioned", None)
        data.setdefault("environments", {})["prod"] = {}
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = plan("prod", catalog, REPO / "stacks", None)
    references = {(s.name, ref.key) for s in result.fleet.servers for ref in s.spec.secrets}
    assert ("secret-reader", "tests/secret-reader/token") in references
    by_type = Counter(r.type for r in result.registrations)
    assert by_type["aws:secretsmanager/secret:Secret"] == len(references)
    assert not by_type["aws:secretsmanager/secretVersion:SecretVersion"]  # no value, ever
    with_secrets = {name for name, _ in references}
    external = {
        r.inputs["metadata"]["name"] for r in result.registrations if r.inputs.get("kind") == "ExternalSecret"
    }
    assert external == with_secrets
    charts = {r.inputs["chart"] for r in result.registrations if r.type == "kubernetes:helm.sh/v4:Chart"}
    assert "external-secrets" in charts


def test_prod_gateway_and_router_are_highly_available() -> None:
    budgets = {b["metadata"]["name"] for b in of_kind("prod", "PodDisruptionBudget")}
    for name in ("mcp-gateway", "mcp-router"):
        [deployment] = [d for d in of_kind("prod", "Deployment") if d["metadata"]["name"] == name]
        assert deployment["spec"]["replicas"] >= 2
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert any(
            c["topologyKey"] == "topology.kubernetes.io/zone" and c["whenUnsatisfiable"] == "DoNotSchedule"
            for c in spread
        )
        assert name in budgets
    [balancer] = [s for s in of_kind("prod", "Service") if s["spec"].get("type") == "LoadBalancer"]
    assert balancer["metadata"]["name"] == "mcp-gateway"
    assert "service.beta.kubernetes.io/aws-load-balancer-type" in balancer["metadata"]["annotations"]


def test_only_the_gateway_is_exposed_outside_the_cluster() -> None:
    for env in ("local", "dev", "staging", "prod"):
        exposed = [
            s["metadata"]["name"]
            for s in of_kind(env, "Service")
            if s["spec"].get("type") in {"LoadBalancer", "NodePort"}
        ]
        assert exposed == ["mcp-gateway"], env


def test_local_creates_no_aws_resource_at_all() -> None:
    types = Counter(r.type for r in planned("local").registrations)
    assert not [t for t in types if t.startswith("aws:") or t == "pulumi:providers:aws"]
    assert not of_kind("local", "ExternalSecret")


def test_no_local_secret_value_reaches_the_plan_output() -> None:
    result = planned("local")
    text = "\n".join(result.files.values())
    assert "value of" not in text and "not read" not in text
    for secret in of_kind("local", "Secret"):
        assert set(secret["stringData"].values()) == {"[secret]"}
    assert json.loads(result.files["resources.json"])


@pytest.mark.parametrize("env", ["local", "dev", "staging", "prod"])
def test_every_environment_has_mesh_gateway_router_and_secrets(env: str) -> None:
    types = Counter(r.type for r in planned(env).registrations)
    for component in ("Mesh", "Gateway", "Router", "Secrets", "Fleet"):
        assert types[f"mcpfleet:index:{component}"] == 1, (env, component)


def test_prod_monitoring_has_a_monitor_and_alerts_per_server_and_dashboards() -> None:
    charts = {r.inputs["chart"]: r.inputs for r in of_type("prod", "kubernetes:helm.sh/v4:Chart")}
    assert "kube-prometheus-stack" in charts and charts["kube-prometheus-stack"]["version"]
    servers = planned("prod").fleet.servers
    rules = {r["metadata"]["name"] for r in of_kind("prod", "PrometheusRule")}
    # One per server, and the router's own (the fleet endpoint's withheld tools and unlisted servers).
    assert rules == {s.name for s in servers} | {"mcp-router"}
    monitors = {m["metadata"]["name"] for m in of_kind("prod", "ServiceMonitor")}
    assert monitors == {s.name for s in servers if s.spec.metrics_path is not None}
    # The gateway's and the MCP router's replicas, scraped directly on their named metrics ports.
    assert sorted(m["metadata"]["name"] for m in of_kind("prod", "PodMonitor")) == [
        "mcp-gateway",
        "mcp-router",
    ]
    alerts = {
        rule["alert"]
        for prometheus_rule in of_kind("prod", "PrometheusRule")
        for group in prometheus_rule["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert len(alerts) >= 6
    dashboards = [
        c for c in of_kind("prod", "ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert len(dashboards) == 2
    for dashboard in dashboards:
        for text in dashboard["data"].values():
            assert json.loads(text)["panels"]


@pytest.mark.parametrize("env", ["local", "dev", "staging", "prod"])
def test_the_gateway_certificate_and_load_balancer_have_their_controllers(env: str) -> None:
    charts = {r.inputs["chart"] for r in of_type(env, "kubernetes:helm.sh/v4:Chart")}
    assert "cert-manager" in charts
    assert ("aws-load-balancer-controller" in charts) == (env != "local")


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_domain_names_the_gateway_load_balancer_on_eks(env: str) -> None:
    settings = planned(env).fleet.settings
    assert settings.dns is not None
    [record] = of_type(env, "aws:route53/record:Record")
    assert (record.inputs["name"], record.inputs["type"]) == (settings.domain, "CNAME")
    assert record.inputs["zoneId"] == settings.dns.hosted_zone_id
    # Its value is the load balancer the controller makes for the gateway's Service: made after it.
    [service] = [r for r in of_type(env, "kubernetes:core/v1:Service") if r.name == "gateway-service"]
    assert service.inputs["spec"]["type"] == "LoadBalancer"
    assert record.dependencies == (service.urn,)


def test_local_makes_no_dns_record() -> None:
    assert not of_type("local", "aws:route53/record:Record")
