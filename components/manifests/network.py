"""Per-server NetworkPolicy: in from the MCP router and the scraper (through the mesh) and kubelet probes
only; out to DNS and declared egress.
"""

from __future__ import annotations

import ipaddress

from components.manifests import K8sObject
from components.manifests.labels import (
    PROMETHEUS_POD_LABELS,
    ROUTER_POD_LABELS,
    selector_labels,
    server_labels,
)
from components.manifests.mesh import HBONE_PORT, KUBELET_PROBE_SOURCE
from components.manifests.workload import PORT_NAME
from mcpfleet.fleet import FleetServer
from mcpfleet.stacks.models import Environment

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# A hostname cannot be matched by a NetworkPolicy, only its port: such egress is allowed to public
# addresses on the declared ports, never to the cluster, private networks or the cloud metadata API.
# The mesh registers the host (a ServiceEntry) but its ambient data plane does not narrow by host: see
# components/manifests/mesh.py.
NON_PUBLIC_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]


def _peer(namespace: str, pod_labels: dict[str, str]) -> K8sObject:
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
        "podSelector": {"matchLabels": dict(pod_labels)},
    }


def ip_block(cidr: str) -> K8sObject:
    """The range, minus the non-public ranges strictly inside it (so 0.0.0.0/0 means the internet)."""
    network = ipaddress.IPv4Network(cidr, strict=False)
    inside = [r for r in NON_PUBLIC_RANGES if ipaddress.IPv4Network(r).subnet_of(network) and r != cidr]
    return {"cidr": cidr, "except": inside} if inside else {"cidr": cidr}


def network_policy(server: FleetServer, settings: Environment) -> K8sObject:
    dns = {
        "to": [_peer("kube-system", {"k8s-app": "kube-dns"})],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    egress = [dns]
    for rule in server.spec.egress:
        block = ip_block(rule.cidr or "0.0.0.0/0")
        egress.append(
            {
                "to": [{"ipBlock": block}],
                "ports": [{"protocol": rule.protocol, "port": p} for p in rule.ports],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": server.name, "namespace": server.namespace, "labels": server_labels(server)},
        "spec": {
            "podSelector": {"matchLabels": selector_labels(server)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                # The ambient mesh carries the router's and Prometheus's connections as mTLS tunnels to
                # HBONE_PORT, never to the server's own port: a NetworkPolicy is enforced on the node,
                # before ztunnel unwraps the tunnel inside the pod. Plaintext to the server port would be
                # refused by STRICT mTLS anyway, so it is not opened. HAProxy's pods are not admitted:
                # every request reaches a server through the router.
                {
                    "from": [
                        _peer(settings.gateway_namespace, ROUTER_POD_LABELS),
                        _peer(settings.monitoring_namespace, PROMETHEUS_POD_LABELS),
                    ],
                    "ports": [{"protocol": "TCP", "port": HBONE_PORT}],
                },
                # Kubelet probes arrive SNAT'ed from the mesh's link-local probe address; only the node
                # can send from it, and only to the probed port.
                {
                    "from": [{"ipBlock": {"cidr": KUBELET_PROBE_SOURCE}}],
                    "ports": [{"protocol": "TCP", "port": PORT_NAME}],
                },
            ],
            "egress": egress,
        },
    }
