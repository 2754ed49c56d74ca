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
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
API_SERVER_PORT = 443
# The `kubernetes` Service takes the first address of the service range. EKS picks 10.100.0.0/16 or
# 172.20.0.0/16 when the cluster sets none (EKS API reference, KubernetesNetworkConfigRequest), as ours do.
EKS_API_SERVICE_ADDRESSES = ["10.100.0.1/32", "172.20.0.1/32"]
# kube-apiserver's own port on a kubeadm-made node (kind's control plane), reached after the Service's
# address is translated.
KUBEADM_API_SERVER_PORT = 6443


def api_server_egress(settings: Environment) -> K8sObject:
    """Egress to the Kubernetes API server, for a server with `kubernetesAccess` only.

    A NetworkPolicy may see the `kubernetes` Service's address or, once translated, the API server's
    own: on EKS the private endpoint's network interfaces in the cluster's VPC, on 443; on an existing
    cluster (kind) the control-plane node, on 6443, in a private range of its own choosing.
    """
    if settings.cluster.provider == "eks" and settings.cluster.vpc_cidr is not None:
        blocks = [settings.cluster.vpc_cidr, *EKS_API_SERVICE_ADDRESSES]
        ports = [API_SERVER_PORT]
    else:
        blocks = list(PRIVATE_RANGES)
        ports = [API_SERVER_PORT, KUBEADM_API_SERVER_PORT]
    return {
        "to": [{"ipBlock": {"cidr": block}} for block in blocks],
        "ports": [{"protocol": "TCP", "port": port} for port in ports],
    }


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
    if server.spec.kubernetes_access is not None:
        egress.append(api_server_egress(settings))
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
