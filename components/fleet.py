"""Fleet: the root component of an environment, holding its namespaces and one McpServer per server."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.namespaces import ServerNamespaces
from components.server import McpServer
from mcpfleet.fleet import Fleet as FleetModel
from mcpfleet.fleet import FleetServer


class Fleet(pulumi.ComponentResource):
    """Every server of one environment, on the given Kubernetes provider."""

    def __init__(
        self,
        name: str,
        fleet: FleetModel,
        kubernetes: pulumi.ProviderResource,
        workloads: Sequence[FleetServer] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """workloads: the servers to create McpServer components for (default: all of the fleet's)."""
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
            for server in (fleet.servers if workloads is None else workloads)
        }
        self.register_outputs({"servers": [s.name for s in fleet.servers], "namespaces": sorted(namespaces)})
