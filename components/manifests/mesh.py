"""Istio in ambient mode as plain data: pinned charts, mesh-wide STRICT mTLS, each server's mesh policy.

Why ambient and not sidecars: an injected sidecar brings the `istio-init` container, which needs NET_ADMIN
and NET_RAW to program iptables; Pod Security `restricted`, enforced on every server namespace, refuses
both. Sidecars without it need the istio-cni node agent anyway. Ambient uses that same node agent and a
per-node proxy (ztunnel) that redirects and encrypts traffic from inside the pod's network namespace, so
server pods stay exactly as built (no extra container, no capability) and still get STRICT mTLS and
identity-based authorization at L4. The privileged parts (istio-cni, ztunnel) live only in `istio-system`.

Known limits of ambient, from Istio's own issue tracker, that the policies here cannot lift:
- ztunnel does not enforce `outboundTrafficPolicy: REGISTRY_ONLY` (istio/istio#54281): a destination
  unknown to the registry is passed through. The setting still binds sidecars and waypoints, and each
  server's NetworkPolicy keeps host egress to public addresses on the declared ports only.
- ztunnel does not honour ServiceEntry `exportTo` (istio/istio#55163, open).
Narrowing egress to the declared hosts in ambient takes an egress waypoint; the ServiceEntries below are
what such a waypoint would route by.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from components.manifests import K8sObject
from components.manifests.labels import (
    PART_OF,
    PROMETHEUS_SERVICE_ACCOUNT,
    ROUTER_SERVICE_ACCOUNT,
    selector_labels,
    server_labels,
)
from mcpfleet.fleet import FleetServer
from mcpfleet.stacks.models import Environment

ISTIO_NAMESPACE = "istio-system"
# Istio's official Helm repository (istio.io, "Install with Helm" for ambient mode). The charts' version is
# the stack setting `mesh.istioVersion` (default 1.27.3: tag 1.27.3 of istio/istio, commit
# df538c2279a633544e6c0961a03ab772729933be, 2025-10-17, whose `manifests/charts/` the release publishes).
ISTIO_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
# Pods of a namespace (or a single pod) carrying this label are in the ambient mesh.
AMBIENT_LABELS = {"istio.io/dataplane-mode": "ambient"}
# HBONE: ztunnel tunnels mesh traffic to the destination pod on this port (mTLS inside).
HBONE_PORT = 15008
# In ambient mode kubelet probes reach the pod SNAT'ed from this link-local address; ztunnel lets them
# through as plaintext, but a NetworkPolicy must admit them (istio.io: "Ambient and Kubernetes
# NetworkPolicy").
KUBELET_PROBE_SOURCE = "169.254.7.127/32"
TRUST_DOMAIN = "cluster.local"
# Hosts under the cluster domain are Kubernetes Services, already in the mesh's registry.
CLUSTER_DOMAIN_SUFFIX = ".cluster.local"
_MAX_NAME = 253


@dataclass(frozen=True)
class ChartRelease:
    """One pinned Helm release: chart `chart` at `version` from `repository`, installed as `release`."""

    release: str
    chart: str
    version: str
    repository: str
    namespace: str
    values: dict[str, Any] = field(default_factory=dict)


def istio_charts(settings: Environment) -> list[ChartRelease]:
    """The four charts of an ambient install, in the order istio.io installs them.

    base (CRDs, cluster roles) first; istiod with the `ambient` profile; the istio-cni node agent with
    the `ambient` profile; ztunnel, whose chart has no `ambient` profile file (istio.io installs it bare).
    """
    version = settings.mesh.istio_version

    def chart(release: str, name: str, values: dict[str, Any]) -> ChartRelease:
        return ChartRelease(release, name, version, ISTIO_REPOSITORY, ISTIO_NAMESPACE, values)

    return [
        chart("istio-base", "base", {}),
        chart(
            "istiod",
            "istiod",
            {
                "profile": "ambient",
                "meshConfig": {"outboundTrafficPolicy": {"mode": settings.mesh.outbound_traffic_policy}},
            },
        ),
        chart("istio-cni", "cni", {"profile": "ambient"}),
        chart("ztunnel", "ztunnel", {}),
    ]


def _platform_labels() -> dict[str, str]:
    return {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"}


def istio_namespace() -> K8sObject:
    """istio-system at Pod Security `privileged`, and outside the mesh.

    The istio-cni node agent runs privileged with host paths (it installs the CNI plugin on the node and
    writes redirection rules into pod network namespaces) and ztunnel adds network capabilities that
    `baseline` forbids. Nothing else runs here, and the server namespaces stay `restricted`.
    """
    labels = _platform_labels()
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "privileged"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ISTIO_NAMESPACE, "labels": labels}}


def mesh_peer_authentication() -> K8sObject:
    """Mesh-wide STRICT mTLS: a policy named `default` in the root namespace applies to every workload.

    In ambient mode ztunnel always speaks mTLS (HBONE) between meshed pods; STRICT additionally refuses
    plaintext connections into a meshed pod, so nothing can reach a server by going around the mesh
    (kubelet probes excepted, see KUBELET_PROBE_SOURCE).
    """
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": ISTIO_NAMESPACE, "labels": _platform_labels()},
        "spec": {"mtls": {"mode": "STRICT"}},
    }


def ingress_peer_authentication(
    name: str, namespace: str, pod_labels: dict[str, str], ports: list[int]
) -> K8sObject:
    """STRICT for a meshed edge workload, except its listener ports, which take traffic from outside the
    mesh (a load balancer, the API server calling a webhook). For the gateway, so it can join the mesh."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name, "namespace": namespace, "labels": _platform_labels()},
        "spec": {
            "selector": {"matchLabels": dict(pod_labels)},
            "mtls": {"mode": "STRICT"},
            "portLevelMtls": {str(port): {"mode": "PERMISSIVE"} for port in sorted(set(ports))},
        },
    }


def principal(namespace: str, service_account: str) -> str:
    """The mesh identity of a service account, as AuthorizationPolicy `principals` spell it."""
    return f"{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


def caller_principals(settings: Environment) -> list[str]:
    """The only identities that may open a connection to a server: the MCP router (which runs in the
    gateway's namespace: every request has passed HAProxy and the router's own checks) and Prometheus.
    HAProxy itself is not among them: nothing reaches a server without the router deciding on it."""
    return [
        principal(settings.gateway_namespace, ROUTER_SERVICE_ACCOUNT),
        principal(settings.monitoring_namespace, PROMETHEUS_SERVICE_ACCOUNT),
    ]


def authorization_policy(server: FleetServer, settings: Environment) -> K8sObject:
    """ALLOW the router and Prometheus on the server's port; with an ALLOW policy in place, ztunnel denies
    every other caller."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": server.name, "namespace": server.namespace, "labels": server_labels(server)},
        "spec": {
            "selector": {"matchLabels": selector_labels(server)},
            "action": "ALLOW",
            "rules": [
                {
                    "from": [{"source": {"principals": caller_principals(settings)}}],
                    "to": [{"operation": {"ports": [str(server.spec.transport.port)]}}],
                }
            ],
        },
    }


def _port(number: int) -> K8sObject:
    # 443 carries TLS the server originates itself: the mesh routes it by SNI without decrypting.
    protocol = "TLS" if number == 443 else "TCP"
    return {"number": number, "name": f"{protocol.lower()}-{number}", "protocol": protocol}


def egress_hosts(server: FleetServer) -> dict[str, list[int]]:
    """Declared external hosts and their TCP ports (the mesh proxies no UDP; in-cluster names are skipped)."""
    ports: dict[str, set[int]] = defaultdict(set)
    for rule in server.spec.egress:
        if rule.host is None or rule.protocol != "TCP" or rule.host.endswith(CLUSTER_DOMAIN_SUFFIX):
            continue
        ports[rule.host].update(rule.ports)
    return {host: sorted(numbers) for host, numbers in sorted(ports.items())}


def service_entry(server: FleetServer, name: str, hosts: list[str], ports: list[int]) -> K8sObject:
    """The hosts in the mesh's registry, visible to the server's namespace only."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": server.namespace, "labels": server_labels(server)},
        "spec": {
            "hosts": hosts,
            "location": "MESH_EXTERNAL",
            # A wildcard has no single name to resolve: the original destination address is used.
            "resolution": "NONE" if hosts[0].startswith("*.") else "DNS",
            "ports": [_port(number) for number in ports],
            "exportTo": ["."],
        },
    }


def service_entries(server: FleetServer) -> list[K8sObject]:
    """One entry per set of hosts sharing their ports (and resolution): usually one per server.

    Hosts with different ports stay apart, so no host is opened on another host's port.
    """
    groups: dict[tuple[tuple[int, ...], bool], list[str]] = defaultdict(list)
    for host, ports in egress_hosts(server).items():
        groups[(tuple(ports), host.startswith("*."))].append(host)
    return [
        service_entry(server, f"{server.name}-egress" + (f"-{index}" if index else ""), hosts, list(ports))
        for index, ((ports, _), hosts) in enumerate(sorted(groups.items()))
    ]


def mesh_server_objects(server: FleetServer, settings: Environment) -> dict[str, K8sObject]:
    """The server's mesh objects by Pulumi resource name (unique across the fleet)."""
    objects = {f"{server.name}-authorization-policy": authorization_policy(server, settings)}
    for entry in service_entries(server):
        objects[entry["metadata"]["name"]] = entry
    return objects
