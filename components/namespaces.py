"""ServerNamespaces: the namespaces servers run in, each with Pod Security `restricted` and default deny."""

from __future__ import annotations

import pulumi

from components.kube import kubernetes_resource
from components.manifests.namespace import default_deny, namespace


class ServerNamespaces(pulumi.ComponentResource):
    """One namespace per entry of `namespaces` (name -> owning team)."""

    def __init__(
        self, name: str, namespaces: dict[str, str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mcpfleet:index:ServerNamespaces", name, None, opts)
        self.resources: dict[str, pulumi.Resource] = {}
        for ns, team in namespaces.items():
            created = kubernetes_resource(ns, namespace(ns, team), pulumi.ResourceOptions(parent=self))
            kubernetes_resource(
                f"{ns}-default-deny",
                default_deny(ns),
                pulumi.ResourceOptions(parent=self, depends_on=[created]),
            )
            self.resources[ns] = created
        self.register_outputs({"namespaces": sorted(namespaces)})
