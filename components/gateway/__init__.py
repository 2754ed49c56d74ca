"""Gateway: HAProxy in front of every MCP server of the fleet, one public route per server, forwarding to
the MCP router (components.gateway.router)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.gateway.config import render_gateway_config
from components.kube import kubernetes_resource
from components.manifests.gateway import (
    JWT_CONFIG_MAP_NAME,
    NAMESPACE_RESOURCE,
    SELF_SIGNED_ISSUER_RESOURCE,
    SERVICE_RESOURCE,
    gateway_objects,
)
from mcpfleet.fleet import Fleet

TYPE_TOKEN = "mcpfleet:index:Gateway"


class Gateway(pulumi.ComponentResource):
    """The gateway's namespace, HAProxy Deployment, load balancer, autoscaler, policies and certificate.

    Needs cert-manager (for `tls: cert-manager` and `self-signed`) and on EKS the AWS Load Balancer
    Controller, which `ClusterAddons` installs, and Istio's CRDs (its PeerAuthentication), which `Mesh`
    installs: the Fleet orders them first. HAProxy forwards to the Router component's pool, in this
    namespace; the per-server headless Services the router resolves belong to each server's McpServer
    (`endpoints_service`).
    """

    def __init__(
        self,
        name: str,
        fleet: Fleet,
        jwt_public_key: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        # The exact configuration directory the pods run: what `haproxy -c` and the end-to-end tests check.
        self.config = render_gateway_config(fleet)
        objects = gateway_objects(fleet, self.config, jwt_public_key)
        child = pulumi.ResourceOptions(parent=self)
        first = [kubernetes_resource(NAMESPACE_RESOURCE, objects.pop(NAMESPACE_RESOURCE), child)]
        # What the router needs of the gateway before it starts: the namespace and the issuer's key.
        self.router_prerequisites: list[pulumi.Resource] = [first[0]]
        issuer = objects.pop(SELF_SIGNED_ISSUER_RESOURCE, None)
        if issuer is not None:
            # Cluster-scoped; the Certificate asks it for the certificate.
            first.append(kubernetes_resource(SELF_SIGNED_ISSUER_RESOURCE, issuer, child))
        self.namespace_resource = first[0]
        self.service: k8s.core.v1.Service | None = None
        after_namespace = pulumi.ResourceOptions(parent=self, depends_on=first)
        for resource_name, obj in objects.items():
            resource_opts = after_namespace
            if obj["kind"] == "Deployment":
                # After creation the autoscaler owns the replica count; do not fight it on every `up`.
                resource_opts = pulumi.ResourceOptions.merge(
                    after_namespace, pulumi.ResourceOptions(ignore_changes=["spec.replicas"])
                )
            resource = kubernetes_resource(resource_name, obj, resource_opts)
            if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == JWT_CONFIG_MAP_NAME:
                self.router_prerequisites.append(resource)
            if resource_name == SERVICE_RESOURCE and isinstance(resource, k8s.core.v1.Service):
                # Its load balancer's address names the gateway in DNS (components.dns).
                self.service = resource
        self.namespace = fleet.settings.gateway_namespace
        self.host = fleet.settings.domain
        self.register_outputs({"namespace": self.namespace, "host": self.host})
