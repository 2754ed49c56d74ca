"""McpServer: everything about one catalog server, from its workload to its mesh, secrets and alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.cluster.eks import EksCluster
from components.kube import kubernetes_resource
from components.manifests import K8sObject
from components.manifests.gateway import endpoints_service
from components.manifests.monitoring import server_monitoring_objects
from components.manifests.network import network_policy
from components.manifests.rbac import kubernetes_read_objects
from components.manifests.workload import (
    autoscaler,
    deployment,
    disruption_budget,
    service,
    service_account,
    settings_config_map,
    settings_name,
    values_arrive_later,
)
from components.mesh import server_mesh_resources
from components.secrets import LocalValues, server_secret_resources
from mcpfleet.fleet import FleetServer
from mcpfleet.stacks.models import Environment


@dataclass(frozen=True)
class ServerPlatform:
    """What a server's resources need from the environment's platform."""

    environment: str
    grafana_admin_password: pulumi.Input[str]
    gateway_jwt_public_key: str
    # The MCP router's session keys (a Pulumi secret), and its image pinned by digest (None: the release
    # tag, its digest to come at deploy; previews and the offline plan only).
    router_session_keys: pulumi.Input[str]
    router_image: str | None = None
    cluster: EksCluster | None = None
    local_secret_values: LocalValues | None = None


def server_objects(
    server: FleetServer, settings: Environment, service_account_annotations: dict[str, Any] | None = None
) -> dict[str, K8sObject]:
    """The server's workload objects by Pulumi resource name (unique across the fleet)."""
    objects = {
        server.name: service_account(server, service_account_annotations),
        settings_name(server): settings_config_map(server),
        f"{server.name}-deployment": deployment(server, settings),
        f"{server.name}-service": service(server, await_ready=not values_arrive_later(server, settings)),
        f"{server.name}-autoscaler": autoscaler(server),
        f"{server.name}-network-policy": network_policy(server, settings),
    }
    # The headless Service the MCP router resolves to reach each replica (session affinity).
    objects[f"{server.name}-gateway-endpoints"] = endpoints_service(server)
    budget = disruption_budget(server)
    if budget is not None:
        objects[f"{server.name}-disruption-budget"] = budget
    # Read access to the Kubernetes API, for a server whose catalog entry declares it (none otherwise).
    objects.update(kubernetes_read_objects(server))
    return objects


class McpServer(pulumi.ComponentResource):
    """One MCP server: its workload, its secrets, its mesh authorization and its monitoring.

    Everything per server lives here, so the offline plan can split servers across processes.
    """

    def __init__(
        self,
        server: FleetServer,
        settings: Environment,
        platform: ServerPlatform,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mcpfleet:index:McpServer", server.name, None, opts)
        secrets = server_secret_resources(
            server, settings, platform.environment, platform.cluster, platform.local_secret_values, self
        )
        for resource_name, obj in server_objects(
            server, settings, secrets.service_account_annotations
        ).items():
            resource_opts = pulumi.ResourceOptions(parent=self)
            if obj["kind"] == "Deployment":
                # Start once the Secret it reads exists; after creation the autoscaler owns the count.
                resource_opts = pulumi.ResourceOptions(
                    parent=self, depends_on=secrets.resources, ignore_changes=["spec.replicas"]
                )
            kubernetes_resource(resource_name, obj, resource_opts)
        server_mesh_resources(server, settings, parent=self)
        for resource_name, obj in server_monitoring_objects(server, settings).items():
            kubernetes_resource(resource_name, obj, pulumi.ResourceOptions(parent=self))
        self.namespace = server.namespace
        self.service_host = f"{server.name}.{server.namespace}.svc.cluster.local"
        self.register_outputs({"namespace": self.namespace, "serviceHost": self.service_host})
