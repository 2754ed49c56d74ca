"""The pure builders: GIVEN a server in an environment, THEN its objects are hardened by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.manifests.namespace import default_deny, namespace
from components.manifests.network import NON_PUBLIC_RANGES, ip_block, network_policy
from components.manifests.workload import container_args, deployment, disruption_budget, settings_hash
from components.server import server_objects
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.fleet import FleetServer, resolve_fleet
from mcpfleet.stacks.loader import load_stack_config
from mcpfleet.stacks.models import Environment

REPO = Path(__file__).resolve().parents[2]
GOLDEN_CATALOG = REPO / "tests" / "golden" / "catalog"


def fleet_server(name: str, env: str = "prod") -> tuple[FleetServer, Environment]:
    _, settings = load_stack_config(REPO / "stacks", env)
    fleet = resolve_fleet(load_catalog(GOLDEN_CATALOG), env, settings, "stack")  # type: ignore[arg-type]
    return next(s for s in fleet.servers if s.name == name), settings


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def test_deployment_is_hardened() -> None:
    server, settings = fleet_server("search")
    pod = pod_spec(deployment(server, settings))
    [container] = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsUser"] > 0
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["periodSeconds"] == 5
    assert {v["name"] for v in pod["volumes"]} == {"tmp"}


def test_rolling_update_keeps_capacity_and_prod_spreads_hard_across_zones() -> None:
    server, settings = fleet_server("search")
    obj = deployment(server, settings)
    assert obj["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    zone, host = pod_spec(obj)["topologySpreadConstraints"]
    assert zone["topologyKey"] == "topology.kubernetes.io/zone"
    assert zone["whenUnsatisfiable"] == "DoNotSchedule"
    assert host["whenUnsatisfiable"] == "ScheduleAnyway"


def test_dev_spreads_softly() -> None:
    server, settings = fleet_server("search", "dev")
    zone = pod_spec(deployment(server, settings))["topologySpreadConstraints"][0]
    assert zone["whenUnsatisfiable"] == "ScheduleAnyway"


def test_secrets_come_from_a_secret_reference_never_a_value() -> None:
    server, settings = fleet_server("search")
    [container] = pod_spec(deployment(server, settings))["containers"]
    [secret] = container["env"]
    assert secret == {
        "name": "SEARCH_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "search-secrets", "key": "SEARCH_API_KEY"}},
    }


def test_environment_overrides_apply() -> None:
    prod, _ = fleet_server("search", "prod")
    dev, _ = fleet_server("search", "dev")
    assert (prod.replicas, prod.min_replicas, prod.max_replicas) == (3, 3, 8)
    assert prod.resources.limits.memory == "512Mi"
    assert dev.env["LOG_LEVEL"] == "debug" and prod.env["LOG_LEVEL"] == "info"
    assert settings_hash(dev) != settings_hash(prod)
    notes, _ = fleet_server("notes", "prod")
    assert notes.image.reference == "ghcr.io/example/notes-mcp:1.0.1"


def test_prod_floor_raises_replicas_and_adds_a_disruption_budget() -> None:
    notes, _ = fleet_server("notes", "prod")
    assert notes.replicas == 2  # the catalog asks for none; prod's minimumReplicas is 2
    assert disruption_budget(notes) is not None
    local, _ = fleet_server("notes", "local")
    assert disruption_budget(local) is None


def test_stdio_server_runs_behind_the_bridge() -> None:
    server, settings = fleet_server("files", "dev")
    args = container_args(server)
    assert args[:2] == ["--stdio", "uvx files-mcp==0.6.2 --read-only /data"]
    assert args[args.index("--outputTransport") + 1] == "streamableHttp"
    assert args[args.index("--port") + 1] == "8000"
    assert "--stateful" in args  # sessions live in the bridge unless the server is stateless
    [container] = pod_spec(deployment(server, settings))["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_network_policy_admits_the_router_and_the_scraper_and_declared_egress_only() -> None:
    server, settings = fleet_server("search")
    spec = network_policy(server, settings)["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    # Callers come through the ambient mesh (HBONE on 15008); kubelet probes from its link-local address.
    # The MCP router's pods, not HAProxy's: nothing reaches a server without the router deciding on it.
    callers, probes = spec["ingress"]
    sources = {
        (
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            tuple(peer["podSelector"]["matchLabels"].items()),
        )
        for peer in callers["from"]
    }
    assert sources == {
        (settings.gateway_namespace, (("app.kubernetes.io/name", "mcp-router"),)),
        (settings.monitoring_namespace, (("app.kubernetes.io/name", "prometheus"),)),
    }
    assert callers["ports"] == [{"protocol": "TCP", "port": 15008}]
    assert probes == {
        "from": [{"ipBlock": {"cidr": "169.254.7.127/32"}}],
        "ports": [{"protocol": "TCP", "port": "mcp"}],
    }
    dns, by_host, by_cidr = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert by_host["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": NON_PUBLIC_RANGES}}]
    assert "169.254.0.0/16" in NON_PUBLIC_RANGES  # never the cloud metadata API
    assert by_cidr == {
        "to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}],
        "ports": [{"protocol": "TCP", "port": 8443}],
    }


def test_namespace_enforces_restricted_pod_security_and_default_deny() -> None:
    labels = namespace("mcp-search", "search")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert labels["istio.io/dataplane-mode"] == "ambient"
    assert default_deny("mcp-search")["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize(("name", "env"), [("search", "prod"), ("files", "dev"), ("notes", "local")])
def test_server_objects_are_complete_and_share_namespace(name: str, env: str) -> None:
    server, settings = fleet_server(name, env)
    objects = server_objects(server, settings)
    kinds = sorted(obj["kind"] for obj in objects.values())
    expected = [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "Service",
        "Service",  # the headless one the gateway resolves
        "ServiceAccount",
    ]
    if server.min_replicas > 1:
        expected.append("PodDisruptionBudget")
    assert kinds == sorted(expected)
    assert {obj["metadata"]["namespace"] for obj in objects.values()} == {server.namespace}


def test_egress_to_the_whole_internet_still_excludes_private_ranges_and_metadata() -> None:
    assert ip_block("0.0.0.0/0") == {"cidr": "0.0.0.0/0", "except": NON_PUBLIC_RANGES}
    assert ip_block("10.0.0.0/8") == {"cidr": "10.0.0.0/8"}  # declared private range: taken as meant
    assert ip_block("203.0.113.0/24") == {"cidr": "203.0.113.0/24"}
