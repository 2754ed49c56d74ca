"""Fleet: the root component of an environment, holding its platform and one McpServer per server."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.addons import ClusterAddons
from components.dns import GatewayDns, load_balancer_hostname
from components.gateway import Gateway
from components.gateway.router import Router
from components.mesh import Mesh
from components.monitoring import Monitoring
from components.namespaces import ServerNamespaces
from components.secrets import Secrets
from components.server import McpServer, ServerPlatform
from mcpfleet.fleet import Fleet as FleetModel
from mcpfleet.fleet import FleetServer


class Fleet(pulumi.ComponentResource):
    """Every server of one environment, and the platform they run on, on the given Kubernetes provider."""

    def __init__(
        self,
        name: str,
        fleet: FleetModel,
        kubernetes: pulumi.ProviderResource,
        platform: ServerPlatform,
        workloads: Sequence[FleetServer] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """workloads: the servers to create McpServer components for (default: all of the fleet's)."""
        super().__init__("mcpfleet:index:Fleet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": kubernetes})
        settings = fleet.settings
        mesh = Mesh("mesh", settings, child)
        secrets = Secrets("secrets", settings, child)
        namespaces = ServerNamespaces("namespaces", fleet.namespaces, child).resources
        # Its PeerAuthentication needs Istio's CRDs.
        addons = ClusterAddons("addons", settings, platform.cluster, child)
        # Its PeerAuthentication needs Istio's CRDs; its Certificate and issuer cert-manager; its Service
        # the AWS Load Balancer Controller (eks).
        self.gateway = Gateway(
            "gateway",
            fleet,
            platform.gateway_jwt_public_key,
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[mesh, *addons.ready])),
        )
        # Its PodMonitors for the gateway and the router go into the gateway's namespace.
        monitoring = Monitoring(
            "monitoring", settings, platform.grafana_admin_password, self.gateway.namespace_resource, child
        )
        self.dns: GatewayDns | None = None
        if platform.cluster is not None and settings.dns is not None and self.gateway.service is not None:
            # `domain` names the load balancer the AWS Load Balancer Controller makes for the Service.
            self.dns = GatewayDns(
                "gateway-dns",
                settings,
                platform.cluster,
                load_balancer_hostname(self.gateway.service),
                child,
            )
        # In the gateway's namespace, reading its issuer key; its AuthorizationPolicy needs Istio's CRDs.
        self.router = Router(
            "router",
            fleet,
            platform.router_session_keys,
            platform.router_image,
            pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[mesh, *self.gateway.router_prerequisites])
            ),
        )
        self.servers = {
            server.name: McpServer(
                server,
                settings,
                platform,
                pulumi.ResourceOptions.merge(
                    child,
                    # Their custom resources need the charts' CRDs and webhooks first.
                    pulumi.ResourceOptions(
                        depends_on=[namespaces[server.namespace], mesh, secrets, monitoring]
                    ),
                ),
            )
            for server in (fleet.servers if workloads is None else workloads)
        }
        self.register_outputs({"servers": [s.name for s in fleet.servers], "namespaces": sorted(namespaces)})
