"""The mesh: GIVEN a server or an environment, THEN mTLS, caller identities and egress hosts are exact."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.manifests.labels import GATEWAY_POD_LABELS, selector_labels
from components.manifests.mesh import (
    AMBIENT_LABELS,
    HBONE_PORT,
    ISTIO_NAMESPACE,
    ISTIO_REPOSITORY,
    KUBELET_PROBE_SOURCE,
    ingress_peer_authentication,
    istio_charts,
    mesh_server_objects,
)
from components.manifests.namespace import namespace
from components.manifests.network import network_policy
from components.mesh import TYPE_TOKEN, Mesh, server_mesh_resources
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.catalog.models import Egress
from mcpfleet.fleet import FleetServer, resolve_fleet
from mcpfleet.model import ENVIRONMENTS
from mcpfleet.stacks.loader import load_stack_config
from mcpfleet.stacks.models import Environment
from tests.mock_engine import Parent, Recorder, recording, run
from tests.sample import SAMPLE_CATALOG, sample_catalog

REPO = Path(__file__).resolve().parents[2]
GOLDEN_CATALOG = REPO / "tests" / "golden" / "catalog"
CHART_TYPE = "kubernetes:helm.sh/v4:Chart"


def environment(env: str) -> Environment:
    return load_stack_config(REPO / "stacks", env)[1]


def fleet_servers(env: str, catalog: Path = GOLDEN_CATALOG) -> list[FleetServer]:
    fleet = resolve_fleet(load_catalog(catalog), env, environment(env), "stack")  # type: ignore[arg-type]
    return list(fleet.servers)


def golden_server(name: str, env: str = "prod") -> FleetServer:
    return next(s for s in fleet_servers(env) if s.name == name)


def with_egress(server: FleetServer, egress: list[Egress]) -> FleetServer:
    return dataclasses.replace(server, spec=server.spec.model_copy(update={"egress": egress}))


# Under mocks: every registration in order, with its dependencies.


@pytest.fixture
def monitor() -> Iterator[Recorder]:
    yield from recording("prod")


# The pure builders


def test_only_the_router_and_prometheus_identities_may_call_a_server() -> None:
    """Not HAProxy's: every request reaches a server through the MCP router, which decided on it."""
    server, settings_ = golden_server("search"), environment("prod")
    policy = mesh_server_objects(server, settings_)["search-authorization-policy"]
    assert policy["apiVersion"] == "security.istio.io/v1" and policy["kind"] == "AuthorizationPolicy"
    assert policy["metadata"]["namespace"] == server.namespace
    spec = policy["spec"]
    assert spec["action"] == "ALLOW"
    assert spec["selector"] == {"matchLabels": selector_labels(server)}
    (rule,) = spec["rules"]
    assert rule["from"] == [
        {
            "source": {
                "principals": [
                    "cluster.local/ns/mcp-gateway/sa/mcp-router",
                    "cluster.local/ns/monitoring/sa/kube-prometheus-stack-prometheus",
                ]
            }
        }
    ]
    assert rule["to"] == [{"operation": {"ports": ["8080"]}}]


def test_each_declared_host_gets_a_service_entry_seen_by_its_namespace_only() -> None:
    server = golden_server("search")  # one host on 443, one CIDR
    objects = mesh_server_objects(server, environment("prod"))
    entries = {name: obj for name, obj in objects.items() if obj["kind"] == "ServiceEntry"}
    assert list(entries) == ["search-egress"]
    entry = entries["search-egress"]
    assert entry["apiVersion"] == "networking.istio.io/v1"
    assert entry["metadata"] == {
        "name": "search-egress",
        "namespace": server.namespace,
        "labels": entry["metadata"]["labels"],
    }
    assert entry["spec"] == {
        "hosts": ["api.search.example.com"],
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
        "ports": [{"number": 443, "name": "tls-443", "protocol": "TLS"}],
        "exportTo": ["."],
    }


def test_ports_merge_per_host_and_odd_hosts_are_handled() -> None:
    server = with_egress(
        golden_server("search"),
        [
            Egress(host="api.example.com", ports=[443]),
            Egress(host="api.example.com", ports=[8443, 443]),
            Egress(host="*.cdn.example.com", ports=[443]),
            Egress(host="dns.example.com", ports=[853], protocol="UDP"),
            Egress(host="kubernetes.default.svc.cluster.local", ports=[443]),
            Egress(cidr="198.51.100.0/24", ports=[5432]),
        ],
    )
    entries = {
        obj["spec"]["hosts"][0]: obj["spec"]
        for obj in mesh_server_objects(server, environment("dev")).values()
        if obj["kind"] == "ServiceEntry"
    }
    # UDP is not proxied by the mesh; in-cluster Services are in its registry already; CIDRs are no hosts.
    assert sorted(entries) == ["*.cdn.example.com", "api.example.com"]
    assert entries["api.example.com"]["ports"] == [
        {"number": 443, "name": "tls-443", "protocol": "TLS"},
        {"number": 8443, "name": "tcp-8443", "protocol": "TCP"},
    ]
    assert entries["*.cdn.example.com"]["resolution"] == "NONE"


def test_hosts_sharing_their_ports_share_one_entry_and_no_host_gains_a_port() -> None:
    server = with_egress(
        golden_server("search"),
        [
            Egress(host="a.example.com", ports=[443]),
            Egress(host="b.example.com", ports=[443]),
            Egress(host="c.example.com", ports=[8443]),
        ],
    )
    entries = [
        obj["spec"]
        for obj in mesh_server_objects(server, environment("dev")).values()
        if obj["kind"] == "ServiceEntry"
    ]
    by_hosts = {tuple(spec["hosts"]): [p["number"] for p in spec["ports"]] for spec in entries}
    assert by_hosts == {("a.example.com", "b.example.com"): [443], ("c.example.com",): [8443]}


@sample_catalog
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_mesh_objects_are_uniquely_named_across_the_sample_fleet(env: str) -> None:
    settings_ = environment(env)
    resource_names: list[str] = []
    object_names: list[tuple[str, str, str]] = []
    for server in fleet_servers(env, SAMPLE_CATALOG):
        for resource_name, obj in mesh_server_objects(server, settings_).items():
            resource_names.append(resource_name)
            meta = obj["metadata"]
            object_names.append((obj["kind"], meta["namespace"], meta["name"]))
            assert meta["namespace"] == server.namespace
            assert len(meta["name"]) <= 253
    assert len(resource_names) == len(set(resource_names))
    assert len(object_names) == len(set(object_names))


def test_charts_are_the_four_ambient_charts_pinned_to_the_settings_version() -> None:
    charts = istio_charts(environment("dev"))
    assert [(c.release, c.chart) for c in charts] == [
        ("istio-base", "base"),
        ("istiod", "istiod"),
        ("istio-cni", "cni"),
        ("ztunnel", "ztunnel"),
    ]
    assert {c.version for c in charts} == {"1.27.3"}
    assert {c.repository for c in charts} == {ISTIO_REPOSITORY}
    assert {c.namespace for c in charts} == {ISTIO_NAMESPACE}
    by_chart = {c.chart: c.values for c in charts}
    assert by_chart["istiod"] == {
        "profile": "ambient",
        "meshConfig": {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
    }
    assert by_chart["cni"] == {"profile": "ambient"}


def test_server_namespaces_join_the_ambient_mesh() -> None:
    labels = namespace("mcp-search", "search")["metadata"]["labels"]
    assert labels["istio.io/dataplane-mode"] == "ambient"
    assert AMBIENT_LABELS == {"istio.io/dataplane-mode": "ambient"}


def test_network_policy_admits_mesh_tunnels_and_kubelet_probes_only() -> None:
    server, settings_ = golden_server("search"), environment("prod")
    callers, probes = network_policy(server, settings_)["spec"]["ingress"]
    assert callers["ports"] == [{"protocol": "TCP", "port": HBONE_PORT}]
    assert probes == {
        "from": [{"ipBlock": {"cidr": KUBELET_PROBE_SOURCE}}],
        "ports": [{"protocol": "TCP", "port": "mcp"}],
    }


def test_an_edge_workload_is_strict_except_its_listeners() -> None:
    policy = ingress_peer_authentication("mcp-gateway", "mcp-gateway", GATEWAY_POD_LABELS, [8443, 8443, 443])
    assert policy["spec"] == {
        "selector": {"matchLabels": GATEWAY_POD_LABELS},
        "mtls": {"mode": "STRICT"},
        "portLevelMtls": {"443": {"mode": "PERMISSIVE"}, "8443": {"mode": "PERMISSIVE"}},
    }


# The component under mocks


def mesh_component(settings_: Environment) -> None:
    Mesh("mesh", settings_)


def test_mesh_enforces_strict_mtls_mesh_wide_after_the_pinned_charts(monitor: Recorder) -> None:
    run(lambda: mesh_component(environment("prod")))
    monitor.assert_unique_urns()
    component = monitor.one(TYPE_TOKEN)
    children = [r for r in monitor.registrations if r.type not in ("pulumi:pulumi:Stack", TYPE_TOKEN)]
    assert {r.parent for r in children} == {component.urn}

    charts = monitor.of_type(CHART_TYPE)
    assert [(c.inputs["name"], c.inputs["chart"], c.inputs["version"]) for c in charts] == [
        ("istio-base", "base", "1.27.3"),
        ("istiod", "istiod", "1.27.3"),
        ("istio-cni", "cni", "1.27.3"),
        ("ztunnel", "ztunnel", "1.27.3"),
    ]
    for chart in charts:
        assert chart.inputs["namespace"] == "istio-system"
        assert chart.inputs["repositoryOpts"] == {
            "repo": "https://istio-release.storage.googleapis.com/charts"
        }
    assert charts[1].inputs["values"]["meshConfig"] == {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}
    # Installed in order: each chart waits for the one before.
    for earlier, later in itertools.pairwise(charts):
        assert earlier.urn in later.dependencies

    (namespace_,) = monitor.of_kind("Namespace")
    labels = namespace_.inputs["metadata"]["labels"]
    assert namespace_.inputs["metadata"]["name"] == "istio-system"
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert "istio.io/dataplane-mode" not in labels

    (peer,) = monitor.of_kind("PeerAuthentication")
    assert peer.type == "kubernetes:security.istio.io/v1:PeerAuthentication"
    assert peer.inputs["metadata"]["name"] == "default"
    assert peer.inputs["metadata"]["namespace"] == "istio-system"
    assert peer.inputs["spec"] == {"mtls": {"mode": "STRICT"}}
    assert "selector" not in peer.inputs["spec"]
    assert {c.urn for c in charts} <= set(peer.dependencies)


def test_the_chart_version_comes_from_the_settings(monitor: Recorder) -> None:
    settings_ = environment("dev")
    # 1.27.9: a later 1.27 patch release (istio.io, news/releases/1.27.x).
    newer = settings_.model_copy(
        update={"mesh": settings_.mesh.model_copy(update={"istio_version": "1.27.9"})}
    )
    run(lambda: mesh_component(newer))
    assert {c.inputs["version"] for c in monitor.of_type(CHART_TYPE)} == {"1.27.9"}


def test_server_mesh_resources_are_children_of_the_server(monitor: Recorder) -> None:
    server, settings_ = golden_server("search"), environment("prod")

    def program() -> None:
        server_mesh_resources(server, settings_, Parent(server.name))

    run(program)
    parent = monitor.one("mcpfleet:index:McpServer")
    created = [r for r in monitor.registrations if r.type.startswith("kubernetes:")]
    assert sorted(r.inputs["kind"] for r in created) == ["AuthorizationPolicy", "ServiceEntry"]
    assert {r.parent for r in created} == {parent.urn}
    assert (
        monitor.of_kind("AuthorizationPolicy")[0].type
        == "kubernetes:security.istio.io/v1:AuthorizationPolicy"
    )
    assert monitor.of_kind("ServiceEntry")[0].type == "kubernetes:networking.istio.io/v1:ServiceEntry"
