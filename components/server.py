"""McpServer: one hardened workload per catalog server."""

from __future__ import annotations

import pulumi

from components.kube import kubernetes_resource
from components.manifests import K8sObject
from components.manifests.network import network_policy
from components.manifests.workload import (
    autoscaler,
    deployment,
    disruption_budget,
    service,
    service_account,
    settings_config_map,
    settings_name,
)
from mcpfleet.fleet import FleetServer
from mcpfleet.stacks.models import Environment


def server_objects(server: FleetServer, settings: Environment) -> dict[str, K8sObject]:
    """The server's Kubernetes objects by Pulumi resource name (unique across the fleet)."""
    objects = {
        server.name: service_account(server),
        settings_name(server): settings_config_map(server),
        f"{server.name}-deployment": deployment(server, settings),
        f"{server.name}-service": service(server),
        f"{server.name}-autoscaler": autoscaler(server),
        f"{server.name}-network-policy": network_policy(server, settings),
    }
    budget = disruption_budget(server)
    if budget is not None:
        objects[f"{server.name}-disruption-budget"] = budget
    return objects


class McpServer(pulumi.ComponentResource):
    """One MCP server's workload: ServiceAccount, ConfigMap, Deployment, Service, HPA, PDB, NetworkPolicy."""

    def __init__(
        self,
        server: FleetServer,
        settings: Environment,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mcpfleet:index:McpServer", server.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        for resource_name, obj in server_objects(server, settings).items():
            resource_opts = child
            if obj["kind"] == "Deployment":
                # After creation the autoscaler owns the replica count; do not fight it on every `up`.
                resource_opts = pulumi.ResourceOptions(parent=self, ignore_changes=["spec.replicas"])
            kubernetes_resource(resource_name, obj, resource_opts)
        self.namespace = server.namespace
        self.service_host = f"{server.name}.{server.namespace}.svc.cluster.local"
        self.register_outputs({"namespace": self.namespace, "serviceHost": self.service_host})
