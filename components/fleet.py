"""Fleet: the root component of an environment, holding its namespaces and one McpServer per server."""

from __future__ import annotations

import pulumi

from components.namespaces import ServerNamespaces
from components.server import McpServer
from mcpfleet.fleet import Fleet as FleetModel


class Fleet(pulumi.ComponentResource):
    """Every server of one environment, on the given Kubernetes provider."""

    def __init__(
        self,
        name: str,
        fleet: FleetModel,
        kubernetes: pulumi.ProviderResource,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mcpfleet:index:Fleet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": kubernetes})
        namespaces = ServerNamespaces("namespaces", fleet.namespaces, child).resources
        self.servers = {
            server.name: McpServer(
                server,
                fleet.settings,
                pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[namespaces[server.namespace]])
                ),
            )
            for server in fleet.servers
        }
        self.register_outputs({"servers": sorted(self.servers), "namespaces": sorted(namespaces)})
