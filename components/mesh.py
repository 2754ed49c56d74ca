"""Mesh: Istio in ambient mode with STRICT mTLS mesh-wide, and each server's mesh policy objects.

The manifests and the reasons for ambient are in `components/manifests/mesh.py`; this module creates them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.kube import kubernetes_resource
from components.manifests.mesh import (
    ChartRelease,
    istio_charts,
    istio_namespace,
    mesh_peer_authentication,
    mesh_server_objects,
)
from mcpfleet.fleet import FleetServer
from mcpfleet.stacks.models import Environment

TYPE_TOKEN = "mcpfleet:index:Mesh"


def install_chart(
    resource_name: str, release: ChartRelease, opts: pulumi.ResourceOptions
) -> k8s.helm.v4.Chart:
    """A pinned Helm release (a remote component: one opaque resource under the offline plan)."""
    return k8s.helm.v4.Chart(
        resource_name,
        name=release.release,
        chart=release.chart,
        version=release.version,
        namespace=release.namespace,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=release.repository),
        values=release.values,
        opts=opts,
    )


class Mesh(pulumi.ComponentResource):
    """istio-system, the pinned ambient charts (base, istiod, cni, ztunnel) and mesh-wide STRICT mTLS."""

    def __init__(self, name: str, settings: Environment, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        namespace = kubernetes_resource(
            f"{name}-namespace", istio_namespace(), pulumi.ResourceOptions(parent=self)
        )
        # In istio.io's install order, each after the previous: istiod needs base's CRDs, and the node
        # agent and ztunnel need istiod to hand out certificates.
        charts: list[k8s.helm.v4.Chart] = []
        previous: pulumi.Resource = namespace
        for release in istio_charts(settings):
            previous = install_chart(
                f"{name}-{release.release}",
                release,
                pulumi.ResourceOptions(parent=self, depends_on=[previous]),
            )
            charts.append(previous)
        # After every chart: the CRD must exist and istiod's validating webhook must answer.
        kubernetes_resource(
            f"{name}-peer-authentication",
            mesh_peer_authentication(),
            pulumi.ResourceOptions(parent=self, depends_on=list(charts)),
        )
        self.istio_version = settings.mesh.istio_version
        self.charts: Sequence[k8s.helm.v4.Chart] = charts
        self.register_outputs(
            {
                "istioVersion": self.istio_version,
                "outboundTrafficPolicy": settings.mesh.outbound_traffic_policy,
                "mtls": "STRICT",
            }
        )


def server_mesh_resources(
    server: FleetServer, settings: Environment, parent: pulumi.Resource
) -> list[pulumi.CustomResource]:
    """The server's AuthorizationPolicy and ServiceEntries, as children of parent (its McpServer)."""
    opts = pulumi.ResourceOptions(parent=parent)
    return [
        kubernetes_resource(resource_name, obj, opts)
        for resource_name, obj in mesh_server_objects(server, settings).items()
    ]
